"""denoiselab-export: inference files, ONNX and TorchScript from a checkpoint.

    denoiselab-export --ckpt PATH --out FILE [--format inference|onnx|torchscript] [--half]

What each format holds: denoiselab.core.model_files.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from denoiselab.cli.errors import run_cli
from denoiselab.core.model_files import (
    PARITY_FRAMES,
    export_onnx,
    export_torchscript,
    load_denoiser_and_extra,
    save_inference,
)

log = logging.getLogger("denoiselab.cli.export")


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="denoiselab-export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--ckpt", required=True, help="denoiselab-train checkpoint (or an inference file)")
    p.add_argument("--out", required=True, help="output file (.pt / .safetensors, .onnx, .ts)")
    p.add_argument("--format", choices=["inference", "onnx", "torchscript"], default="inference",
                   help="inference: small PyTorch file; onnx / torchscript: the mask estimator as a graph")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("--half", action="store_true", help="inference format: store weights as float16 (half the size)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    denoiser, extra = load_denoiser_and_extra(args.ckpt)
    out = Path(args.out)
    if args.format == "inference":  # the file keeps how it was made (e.g. fine-tuned from which model)
        save_inference(denoiser, out, extra=extra, half=args.half)
        size = out.stat().st_size / 2**20
        print(f"wrote {out} ({size:.2f} MB, {denoiser.net_name}, {denoiser.num_parameters():,} parameters)")
    else:
        export = export_onnx if args.format == "onnx" else export_torchscript
        kwargs = {"opset": args.opset} if args.format == "onnx" else {}
        _, diff = export(denoiser, out, **kwargs)
        print(f"wrote {out}; parity with PyTorch at {', '.join(map(str, PARITY_FRAMES))} frames: "
              f"max |mask diff| = {diff:.2e}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli("denoiselab-export", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
