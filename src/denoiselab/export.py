"""denoiselab-export: inference files, ONNX and TorchScript from a checkpoint.

    denoiselab-export --ckpt PATH --out FILE [--format inference|onnx|torchscript]

ONNX design: the graph holds the *mask estimator* only: noisy magnitude |S| [B, F, T] -> noise
mask f [B, F, T] (compression, the normalisation statistics, the backbone and the mask head).
STFT and iSTFT stay outside the graph (numpy/torch in ``OnnxDenoiser``), because ONNX's STFT
support is uneven across runtimes and the iSTFT is not in the standard opset at all. The model's
STFT settings and rate are written into the ONNX metadata, so an ONNX file is self-describing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from denoiselab.inference import load_denoiser, save_inference
from denoiselab.model.denoiser import Denoiser

log = logging.getLogger("denoiselab.export")


class MaskEstimator(nn.Module):
    """|S| -> f: the part of the Denoiser that is exported."""

    def __init__(self, denoiser: Denoiser):
        super().__init__()
        self.denoiser = denoiser
        # A new Module starts in training mode, and exporters restore the wrapper's mode
        # recursively afterwards: without this, BatchNorm would be traced (and left) in training.
        self.eval()

    def forward(self, noisy_mag: torch.Tensor) -> torch.Tensor:
        return self.denoiser.mask_from_features(noisy_mag)


def export_onnx(denoiser: Denoiser, path: str | Path, frames: int = 200, opset: int = 17) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = MaskEstimator(denoiser)
    example = torch.rand(1, denoiser.frontend.n_freqs, frames)
    tmp = path.with_name(path.name + ".tmp")
    torch.onnx.export(model, (example,), str(tmp), input_names=["noisy_mag"], output_names=["mask"],
                      dynamic_axes={"noisy_mag": {0: "batch", 2: "frames"}, "mask": {0: "batch", 2: "frames"}},
                      opset_version=opset, dynamo=False)
    import onnx

    proto = onnx.load(str(tmp))
    meta = proto.metadata_props.add()
    meta.key, meta.value = "denoiselab_spec", json.dumps(denoiser.spec())
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    return path


def onnx_parity(denoiser: Denoiser, path: str | Path, frames: tuple[int, ...] = (50, 333)) -> float:
    """Max |mask_pytorch - mask_onnxruntime| over random magnitudes of several lengths."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for t in frames:
        if getattr(denoiser.net, "time_stride", 1) > 1:
            t = int(np.ceil(t / denoiser.net.time_stride) * denoiser.net.time_stride)
        mag = torch.rand(2, denoiser.frontend.n_freqs, t, generator=g) * 3
        with torch.no_grad():
            ref = denoiser.mask_from_features(mag).numpy()
        got = sess.run(None, {"noisy_mag": mag.numpy()})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    return worst


def export_torchscript(denoiser: Denoiser, path: str | Path) -> Path:
    path = Path(path)
    model = MaskEstimator(denoiser)
    traced = torch.jit.trace(model, torch.rand(1, denoiser.frontend.n_freqs, 64))
    tmp = path.with_name(path.name + ".tmp")
    traced.save(str(tmp))
    tmp.replace(path)
    return path


class OnnxDenoiser:
    """Runs an exported mask estimator in onnxruntime, with the Denoiser's STFT/iSTFT around it."""

    def __init__(self, onnx_path: str | Path, denoiser: Denoiser, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.denoiser = denoiser

    def mask_from_features(self, noisy_mag: torch.Tensor, update_norm: bool = False) -> torch.Tensor:
        out = self.session.run(None, {"noisy_mag": noisy_mag.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(out)

    def bind(self) -> Denoiser:
        """Make the Denoiser use onnxruntime for its mask (STFT/iSTFT unchanged)."""
        self.denoiser.mask_from_features = self.mask_from_features  # type: ignore[method-assign]
        return self.denoiser


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="denoiselab-export", description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True, help="denoiselab-train checkpoint (or an inference file)")
    p.add_argument("--out", required=True, help="output file (.pt / .safetensors, .onnx, .ts)")
    p.add_argument("--format", choices=["inference", "onnx", "torchscript"], default="inference")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--half", action="store_true", help="inference format: store weights as float16 (half the size)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        denoiser = load_denoiser(args.ckpt)
        out = Path(args.out)
        if args.format == "inference":
            save_inference(denoiser, out, half=args.half)
            size = out.stat().st_size / 2**20
            print(f"wrote {out} ({size:.2f} MB, {denoiser.net_name}, {denoiser.num_parameters():,} parameters)")
        elif args.format == "onnx":
            export_onnx(denoiser, out, opset=args.opset)
            diff = onnx_parity(denoiser, out)
            print(f"wrote {out}; parity with PyTorch: max |mask diff| = {diff:.2e}")
            if diff > 1e-4:
                print("WARNING: ONNX output differs from PyTorch by more than 1e-4", file=sys.stderr)
                return 1
        else:
            export_torchscript(denoiser, out)
            traced = torch.jit.load(str(out))
            mag = torch.rand(1, denoiser.frontend.n_freqs, 128)
            with torch.no_grad():
                diff = float((traced(mag) - denoiser.mask_from_features(mag)).abs().max())
            print(f"wrote {out}; parity with PyTorch: max |mask diff| = {diff:.2e}")
    except (FileNotFoundError, ValueError, RuntimeError, ImportError) as err:
        log.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
