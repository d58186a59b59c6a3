"""denoiselab-prepare: cut long clean and noise recordings into fixed-length clips + a manifest.

    denoiselab-prepare --clean DIR --noise DIR --out DIR [--clip-seconds 5] [--overlap 0.5]
                       [--premix-snrs 0,5,10 --premix-count 200]

Then train from the frozen clips with ``denoiselab-train data.manifest=OUT/manifest.csv``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from denoiselab.cli.errors import run_cli
from denoiselab.training.prepare import prepare


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="denoiselab-prepare", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--clean", required=True, help="folder of clean speech recordings (recursive)")
    p.add_argument("--noise", required=True, help="folder of noise recordings (recursive)")
    p.add_argument("--out", required=True, help="output folder (clips, manifest.csv, pairs/)")
    p.add_argument("--sample-rate", type=int, default=16000, help="rate of the clips (Hz)")
    p.add_argument("--clip-seconds", type=float, default=5.0, help="clip length (s)")
    p.add_argument("--overlap", type=float, default=0.0, help="fraction of a clip shared with the next (0..0.99)")
    p.add_argument("--silence-db", type=float, default=-50.0, help="drop clips whose RMS is below this (dBFS)")
    p.add_argument("--clip-level", type=float, default=0.999, help="|sample| counted as clipped at or above this")
    p.add_argument("--max-clipped", type=float, default=0.001,
                   help="drop clips with more clipped samples than this share")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of source files held out for validation")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/validation split and the pre-mixes")
    p.add_argument("--premix-snrs", default="", help="comma-separated SNRs (dB) for frozen noisy/clean pairs")
    p.add_argument("--premix-count", type=int, default=0, help="number of training pairs to pre-mix")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    snrs = [float(s) for s in args.premix_snrs.split(",") if s.strip()]
    stats = prepare(args.clean, args.noise, args.out, args.sample_rate, args.clip_seconds, args.overlap,
                    args.silence_db, args.clip_level, args.max_clipped, args.val_fraction, args.seed, snrs,
                    args.premix_count)
    print(f"denoiselab-prepare: {args.out}/manifest.csv")
    for k, v in stats.items():
        print(f"  {k}: {v}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli("denoiselab-prepare", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
