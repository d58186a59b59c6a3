"""denoiselab-demo-data: generate the built-in demo corpus (synthetic speech + labelled noises).

    denoiselab-demo-data [--out data/demo] [--size demo|tiny] [--seed 0] [--force]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from denoiselab.training.data.demo_corpus import SIZES, generate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="denoiselab-demo-data", description="Generate the built-in demo corpus.")
    p.add_argument("--out", default="data/demo", help="corpus folder (default data/demo)")
    p.add_argument("--size", default="demo", choices=sorted(SIZES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="regenerate even if the manifest matches")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        root = generate(args.out, args.size, args.seed, args.force)
    except Exception as exc:  # SynthesisUnavailable and friends: one clear line
        print(f"denoiselab-demo-data: {exc}", file=sys.stderr)
        return 2
    n = len(json.loads((root / "manifest.json").read_text())["files"])
    print(f"demo corpus: {root} ({n} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
