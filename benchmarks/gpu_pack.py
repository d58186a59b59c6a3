"""Pack what benchmarks/gpu_train.sh needs on a lent GPU machine (no internet there) into .gpu/ (git-ignored):
the wheels its image lacks (Python 3.12, manylinux x86_64) and a subset of ../shared/data small enough to
travel with the working tree (the device tool carries 64 MiB per call in all).

    python benchmarks/gpu_pack.py [--clean-minutes 25] [--noise-minutes 30]

Then, with the device tool: run(command="bash benchmarks/gpu_train.sh", carry=[".gpu"], timeout_s=560).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
#: What the GPU image lacks (it has torch, torchaudio, lightning, numpy, scipy, rich, matplotlib, safetensors).
WHEELS = ["hydra-core==1.3.2", "omegaconf==2.3.0", "antlr4-python3-runtime==4.9.3", "soundfile==0.13.1",
          "pystoi==0.4.1", "pyroomacoustics==0.10.1"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"]


def pick(files: list[Path], minutes: float) -> list[Path]:
    """Every k-th file until the minutes are reached: the subset spans the whole folder."""
    total = sum(sf.info(f).duration for f in files)
    step = max(1, int(total / 60 / minutes))
    out, seconds = [], 0.0
    for f in files[::step]:
        out.append(f)
        seconds += sf.info(f).duration
        if seconds >= minutes * 60:
            break
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--clean-minutes", type=float, default=25.0)
    p.add_argument("--noise-minutes", type=float, default=30.0)
    p.add_argument("--out", default=str(ROOT / ".gpu"))
    args = p.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    (out / "wheels").mkdir(parents=True)
    platforms = [a for plat in PLATFORMS for a in ("--platform", plat)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(out / "wheels"),
                    *WHEELS], check=True)
    for split, kind, minutes in (("train", "clean", args.clean_minutes), ("train", "noise", args.noise_minutes),
                                 ("dev", "clean", 3.0), ("dev", "noise", 5.0)):
        dst = out / "data" / split / kind
        dst.mkdir(parents=True)
        for f in pick(sorted((DATA / split / kind).glob("*.flac")), minutes):
            shutil.copy2(f, dst / f.name)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    print(f"{out}: {size:.1f} MiB (carry limit 64 MiB together with the working tree)")


if __name__ == "__main__":
    main()
