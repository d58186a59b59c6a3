"""Pack what benchmarks/gpu_train.sh needs on a lent GPU machine (no internet there) into .gpu/ (git-ignored):
the wheels its image lacks (Python 3.12, manylinux x86_64) and a subset of ../shared/data small enough to
travel with the working tree (the device tool carries 64 MiB per call in all).

    python benchmarks/gpu_pack.py [--clean-minutes 25] [--noise-minutes 30] [--finetune-types T1,T2]

Then, with the device tool: run(command="bash benchmarks/gpu_train.sh", carry=[".gpu"], timeout_s=560).
--finetune-types packs for benchmarks/gpu_finetune.sh instead: each type's fine-tuning recordings as
benchmarks/targeted.py splits them (the first 5 of dev/noise/<type>_*) in .gpu/data/finetune/<type>/, and no
dev set.
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
WHEELS = ["hydra-core==1.3.2", "omegaconf==2.3.0", "soundfile==0.13.1", "pystoi==0.4.1", "pyroomacoustics==0.10.1"]
#: Published as source only (pure Python): built into a wheel here.
BUILT = ["antlr4-python3-runtime==4.9.3"]
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
    p.add_argument("--finetune-types", default="", help="comma-separated noise types for gpu_finetune.sh")
    args = p.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    (out / "wheels").mkdir(parents=True)
    platforms = [a for plat in PLATFORMS for a in ("--platform", plat)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(out / "wheels"),
                    *WHEELS], check=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out / "wheels"), *BUILT],
                   check=True)
    sets = [("train", "clean", args.clean_minutes), ("train", "noise", args.noise_minutes)]
    if not args.finetune_types:  # gpu_train.sh's validation; gpu_finetune.sh needs no dev set
        sets += [("dev", "clean", 3.0), ("dev", "noise", 5.0)]
    for split, kind, minutes in sets:
        dst = out / "data" / split / kind
        dst.mkdir(parents=True)
        for f in pick(sorted((DATA / split / kind).glob("*.flac")), minutes):
            shutil.copy2(f, dst / f.name)
    for noise_type in filter(None, args.finetune_types.split(",")):
        files = sorted((DATA / "dev" / "noise").glob(f"{noise_type}_*.flac"))[:5]  # targeted.py's split
        if not files:
            sys.exit(f"no dev recordings of {noise_type}")
        dst = out / "data" / "finetune" / noise_type
        dst.mkdir(parents=True)
        for f in files:
            shutil.copy2(f, dst / f.name)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    print(f"{out}: {size:.1f} MiB (carry limit 64 MiB together with the working tree)")


if __name__ == "__main__":
    main()
