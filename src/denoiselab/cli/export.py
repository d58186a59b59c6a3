"""denoiselab-export: inference files, ONNX and TorchScript from a checkpoint.

    denoiselab-export --ckpt PATH --out FILE [--format inference|onnx|torchscript] [--half] [--force]

The format follows the extension of FILE (.pt/.safetensors, .onnx, .ts) unless --format says it; an
existing FILE is kept unless --force.

What each format holds: denoiselab.core.model_files.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from denoiselab.cli.errors import run_cli
from denoiselab.core.errors import UserError
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
    p.add_argument("--format", choices=["inference", "onnx", "torchscript"], default=None,
                   help="inference: small PyTorch file; onnx / torchscript: the mask estimator as a graph "
                        "(default: from the --out extension)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("--half", action="store_true", help="inference format: store weights as float16 (half the size)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out = Path(args.out)
    args.format = output_format(out, args.format)
    if out.exists() and not args.force:
        raise UserError(f"{out} exists; --force replaces it (or choose another --out)")
    if args.half and args.format != "inference":  # was ignored: the graph formats keep float32 weights
        raise UserError(f"--half stores an inference file's weights as float16; the {args.format} format keeps "
                        "float32 (leave --half out, or write a .pt / .safetensors file)")
    if args.opset != p.get_default("opset") and args.format != "onnx":
        raise UserError(f"--opset sets the ONNX opset; the {args.format} format has none")
    denoiser, extra = load_denoiser_and_extra(args.ckpt)
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


#: the format each --out extension stands for
FORMAT_OF_SUFFIX = {".pt": "inference", ".pth": "inference", ".safetensors": "inference", ".onnx": "onnx",
                    ".ts": "torchscript"}


def output_format(out: Path, given: str | None) -> str:
    """The format to write: the one given, else the one --out's extension stands for; a format that the
    extension contradicts (ONNX into a .pt file) is refused, since the file would be read as the wrong kind."""
    implied = FORMAT_OF_SUFFIX.get(out.suffix.lower())
    if given is None:
        if implied is None:
            raise UserError(f"--out {out}: say --format, or use an extension that names one "
                            f"({', '.join(f'{k} = {v}' for k, v in FORMAT_OF_SUFFIX.items())})")
        return implied
    if implied is not None and implied != given:
        raise UserError(f"--format {given} into {out}: the extension {out.suffix} stands for {implied}; "
                        f"name the file {out.with_suffix(next(k for k, v in FORMAT_OF_SUFFIX.items() if v == given))}")
    return given


def main(argv: list[str] | None = None) -> int:
    return run_cli("denoiselab-export", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
