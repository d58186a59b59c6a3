"""`make demo`: the whole method on the built-in corpus, in one command.

    python -m denoiselab.cli.demo [--data data/demo] [--out outputs/demo/<time>] [--size demo|tiny]

1. generate the demo corpus (synthetic speech + labelled noises; reused when present),
2. train the reference U-Net (conf/experiment/demo.yaml),
3. enhance the noisy test files with the best checkpoint,
4. score it next to the noisy input and the classic baselines (denoiselab-evaluate),
5. print the table and where the report, example wavs and spectrograms are.
Each run gets its own output folder; nothing earlier is overwritten.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from denoiselab.core.checkpoints import best_checkpoint


def _run(cmd: list[str], env: dict[str, str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="denoiselab-demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/demo", help="demo corpus folder (generated if missing)")
    p.add_argument("--out", default=None, help="output folder (default outputs/demo/<date_time>)")
    p.add_argument("--size", default="demo", choices=["demo", "tiny"])
    p.add_argument("--train-overrides", nargs="*", default=[], help="extra Hydra overrides for training")
    args = p.parse_args(argv)
    out = Path(args.out or f"outputs/demo/{time.strftime('%Y-%m-%d_%H-%M-%S')}")
    if out.exists() and any(out.iterdir()):
        print(f"denoiselab-demo: {out} exists and is not empty; choose another --out", file=sys.stderr)
        return 2
    py = sys.executable
    env = {**os.environ, "DENOISELAB_DEMO_DATA": str(Path(args.data).resolve()),
           "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    t0 = time.time()
    from denoiselab.training.data.demo_corpus import generate

    print(f"[1/4] demo corpus -> {args.data}", flush=True)
    try:
        generate(args.data, args.size)
    except Exception as exc:
        print(f"denoiselab-demo: cannot build the demo corpus: {exc}", file=sys.stderr)
        return 2
    data = Path(args.data)
    print(f"[2/4] training the U-Net ({time.time() - t0:.0f} s so far)", flush=True)
    _run([py, "-m", "denoiselab.cli.train", "experiment=demo", f"hydra.run.dir={out / 'train'}",
          f"paths.cache_dir={out / 'cache'}", *args.train_overrides], env)
    ckpt = best_checkpoint(out / "train") or out / "train" / "checkpoints" / "last.ckpt"
    print(f"[3/4] enhancing the test files with {ckpt.name} ({time.time() - t0:.0f} s so far)", flush=True)
    _run([py, "-m", "denoiselab.cli.enhance", str(data / "test" / "noisy"), "--ckpt", str(ckpt),
          "--out", str(out / "enhanced")], env)
    print(f"[4/4] scoring U-Net vs noisy and classic baselines ({time.time() - t0:.0f} s so far)", flush=True)
    _run([py, "-m", "denoiselab.cli.evaluate", f"ckpt=[{ckpt}]", "names=[unet]",
          f"data.noisy={data / 'test' / 'noisy'}", f"data.clean={data / 'test' / 'clean_ref'}",
          f"hydra.run.dir={out / 'evaluate'}", "examples=3",
          "metrics=[pesq_wb,estoi,si_sdr,dnsmos_ovrl]"], env)
    ev = out / "evaluate"
    print("\nDone in {:.1f} min.".format((time.time() - t0) / 60))
    print(f"  report:        {ev / 'summary.md'}  (tables by SNR and noise type, plots)")
    print(f"  summary table: {ev / 'summary.csv'}")
    print(f"  spectrograms:  {ev / 'spectrogram_example.png'}")
    print(f"  before/after:  {ev / 'examples'}/*/noisy.wav and unet.wav (clean.wav for reference)")
    print(f"  all enhanced:  {out / 'enhanced'}")
    print(f"  checkpoint:    {ckpt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
