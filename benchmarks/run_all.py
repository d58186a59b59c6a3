"""Run every benchmark (CPU; several hours on a 2-core machine: quality.py alone trains seven backbones for
12 minutes each): `make bench`."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for script, args in [("throughput.py", []), ("inference.py", []), ("metrics_speed.py", []),
                     ("train_budget.py", ["--net", "unet", "--minutes", "20"]), ("backbones.py", []),
                     ("quality.py", [])]:
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=True)
