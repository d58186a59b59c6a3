"""Run every benchmark (CPU; about a day on a 2-core machine: quality.py alone trains seven backbones for
12 minutes each, augment_ab.py four recipes for 900 steps): `make bench`."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRETRAINED = HERE.parent / "src" / "denoiselab" / "pretrained"
for script, args in [("throughput.py", []), ("inference.py", []), ("metrics_speed.py", []),
                     ("train_budget.py", ["--net", "unet", "--minutes", "20"]), ("backbones.py", []),
                     ("quality.py", []), ("augment_ab.py", []), ("targeted.py", []), ("recipes.py", []),
                     ("device_accuracy.py", ["--extra", f"device_eval={PRETRAINED / 'device_eval.pt'}"])]:
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=True)
