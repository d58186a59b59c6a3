"""Run every benchmark (CPU; ~2.5 h on a 2-core machine, 1 h of it the backbone sweep of quality.py): `make bench`."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for script, args in [("throughput.py", []), ("inference.py", []), ("metrics_speed.py", []),
                     ("train_budget.py", ["--net", "unet", "--minutes", "20"]), ("backbones.py", []),
                     ("quality.py", [])]:
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=True)
