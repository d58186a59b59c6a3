"""Model files: save and load inference files, training checkpoints, ONNX and TorchScript.

Formats
  - inference file (``denoiselab-export``): {format, spec, state_dict} saved with torch.save, or a
    ``.safetensors`` file whose metadata holds the spec. Both load with weights_only semantics:
    no pickled code runs, and no training config, Lightning or Hydra is needed.
  - a Lightning checkpoint from ``denoiselab-train`` works everywhere an inference file does.
  - ONNX: the graph holds the *mask estimator* only: noisy magnitude |S| [B, F, T] -> the backbone's
    raw output (compression, ERB pooling, the normalisation statistics, the backbone). The mask processor
    (sigmoid mask, dB or complex subtraction: a few pointwise lines), STFT and iSTFT stay outside the
    graph, because ONNX's STFT support is uneven across runtimes and the
    iSTFT is not in the standard opset at all. The model's settings are in the ONNX metadata, so an
    ONNX file is self-describing; loading it gives a Denoiser whose ``mask_estimator`` is an
    onnxruntime session.
  - TorchScript: the same mask estimator, traced.
``default`` (or None) names the shipped pretrained model wherever a model path is taken; a training
run dir names its monitored-best checkpoint, or its last.ckpt when its lr decayed over a time budget
(``checkpoints.model_of_run``).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from denoiselab.core.checkpoints import CKPT_KEY, load_checkpoint, model_of_run
from denoiselab.core.denoiser import Denoiser
from denoiselab.core.errors import UserError

log = logging.getLogger(__name__)

INFERENCE_FORMAT = "denoiselab-inference"
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
DEFAULT_MODEL = PRETRAINED_DIR / "default.pt"
#: The model for device evaluation (removes the room, keeps the device's own defects), when shipped.
DEVICE_EVAL_MODEL = PRETRAINED_DIR / "device_eval.pt"
#: The word that names the shipped model wherever a model file is accepted.
DEFAULT_NAME = "default"
#: The word that names the shipped device-evaluation model.
DEVICE_EVAL_NAME = "device_eval"


def resolve_model_path(path: str | Path | None) -> Path:
    """The file behind a model argument: None or ``default`` is the shipped pretrained model."""
    if str(path) == DEVICE_EVAL_NAME:
        if not DEVICE_EVAL_MODEL.is_file():
            raise FileNotFoundError("no device-evaluation model is installed (pretrained/device_eval.pt)")
        return DEVICE_EVAL_MODEL
    if path is None or str(path) == DEFAULT_NAME:
        if not DEFAULT_MODEL.is_file():
            raise FileNotFoundError("no pretrained default model is installed; pass a model file "
                                    "(a denoiselab-train checkpoint or a denoiselab-export file)")
        return DEFAULT_MODEL
    path = Path(path).expanduser()
    if path.is_dir():  # a training run (or its checkpoints/): the checkpoint that stands for it
        chosen = model_of_run(path)
        if chosen is None:
            raise FileNotFoundError(f"model file not found: {path} is a folder without a denoiselab-train "
                                    "checkpoint (pass a .ckpt or model file, or a run dir)")
        return chosen
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    return path


# ---------------------------------------------------------------------- files
def save_inference(denoiser: Denoiser, path: str | Path, extra: dict[str, Any] | None = None,
                   half: bool = False) -> Path:
    """Write a small inference file (.pt or .safetensors) atomically.

    half: store the weights as float16 (half the size; loading casts back to float32, so the
    model still computes in float32). Feature-normalisation buffers always stay float32.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    params = {name for name, _ in denoiser.named_parameters()}
    state = {k: (v.detach().cpu().half() if half and k in params and v.is_floating_point() else v.detach().cpu())
             .contiguous() for k, v in denoiser.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        meta = {"format": INFERENCE_FORMAT, "spec": json.dumps(denoiser.spec()), "extra": json.dumps(extra or {})}
        save_file(state, str(tmp), metadata=meta)
    else:
        torch.save({"format": INFERENCE_FORMAT, "spec": denoiser.spec(), "state_dict": state,
                    "extra": extra or {}}, tmp)
    tmp.replace(path)
    return path


def load_denoiser(path: str | Path | None = None, map_location: str = "cpu") -> Denoiser:
    """Rebuild a Denoiser from an inference file or a Lightning checkpoint (weights_only loading);
    None or ``default``: the shipped model."""
    return load_denoiser_and_extra(path, map_location)[0]


def load_denoiser_and_extra(path: str | Path | None = None, map_location: str = "cpu") -> tuple[Denoiser, dict]:
    """load_denoiser plus the file's extra metadata (how the model was made), from one read of the file."""
    path = resolve_model_path(path)
    if path.suffix == ".onnx":
        return _load_onnx(path), {}
    spec, state, extra = read_model(path, map_location)
    denoiser = Denoiser.from_spec(spec)
    denoiser.load_state_dict(state)
    return denoiser.eval(), extra


def read_model(path: str | Path | None, map_location: str = "cpu") -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(Denoiser spec, its state dict, extra metadata) of an inference file or a training checkpoint,
    without building the model (fine-tuning compares the spec with its config first)."""
    path = resolve_model_path(path)
    if path.suffix == ".onnx":
        raise UserError(f"{path}: an ONNX graph holds no trainable weights; use the .pt/.ckpt it came from")
    extra: dict = {}
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device=map_location) as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != INFERENCE_FORMAT:
                raise ValueError(f"{path} is not a denoiselab model file (no '{INFERENCE_FORMAT}' metadata)")
            spec = json.loads(meta["spec"])
            extra = json.loads(meta.get("extra", "{}"))
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    else:
        ckpt = load_checkpoint(path, map_location)
        if ckpt.get("format") == INFERENCE_FORMAT:
            spec, state, extra = ckpt["spec"], ckpt["state_dict"], dict(ckpt.get("extra") or {})
        elif CKPT_KEY in ckpt and "state_dict" in ckpt:
            spec = ckpt[CKPT_KEY]["denoiser"]
            extra = {k: v for k, v in ckpt[CKPT_KEY].items() if k not in ("denoiser", "wandb_id")}
            state = {k[len("denoiser."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("denoiser.")}
        else:
            raise UserError(f"{path} is neither a denoiselab inference file nor a denoiselab-train checkpoint")
    state = {k.replace("net._orig_mod.", "net."): v for k, v in state.items()}  # torch.compile'd nets
    return spec, state, extra


def _load_onnx(path: Path) -> Denoiser:
    """A Denoiser whose mask comes from onnxruntime (STFT/iSTFT stay in torch)."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX models need the optional extra: pip install 'denoiselab[onnx]'") from None
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "denoiselab_spec" not in meta:
        raise ValueError(f"{path} has no denoiselab metadata; export it with denoiselab-export --format onnx")
    spec = json.loads(meta["denoiselab_spec"])
    if int(spec.get("spec_version", 1)) < 2:
        raise UserError(f"{path} was exported by an older denoiselab (its graph ends in the mask, newer graphs in "
                        "the backbone's output); export it again with denoiselab-export --format onnx")
    return Denoiser.from_spec(spec, mask_estimator=OnnxMaskEstimator(path)).eval()


# ---------------------------------------------------------------------- ONNX / TorchScript
class MaskEstimator(nn.Module):
    """|S| -> the backbone's raw output: the part of the Denoiser that is exported (the mask processor,
    pointwise, runs after the graph, like the STFT before it)."""

    def __init__(self, denoiser: Denoiser):
        super().__init__()
        self.denoiser = denoiser
        # A new Module starts in training mode, and exporters restore the wrapper's mode
        # recursively afterwards: without this, BatchNorm would be traced (and left) in training.
        self.eval()

    def forward(self, noisy_mag: torch.Tensor) -> torch.Tensor:
        return self.denoiser.estimate(noisy_mag)


#: Lengths (frames) at which an exported graph must match PyTorch: on and off the pooling grid, very short.
PARITY_FRAMES = (7, 50, 333)
#: Largest |mask difference| an export may show against PyTorch.
PARITY_TOLERANCE = 1e-4


class ExportError(UserError, RuntimeError):
    """An exported graph does not reproduce the PyTorch model (the file is not written)."""


def parity(denoiser: Denoiser, run: Callable[[torch.Tensor], np.ndarray | torch.Tensor],
           frames: tuple[int, ...] = PARITY_FRAMES) -> float:
    """Max |mask_pytorch - mask_exported| over random magnitudes of several lengths and batch 2;
    ExportError naming the length when the exported graph cannot run at it."""
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for t in frames:
        mag = torch.rand(2, denoiser.frontend.n_freqs, t, generator=g) * 3
        with torch.no_grad():
            ref = denoiser.estimate(mag)
            try:
                got = torch.as_tensor(run(mag))
            except Exception as exc:  # onnxruntime / TorchScript shape errors
                raise ExportError(f"the exported {denoiser.net_name} does not run at {t} frames (its graph keeps "
                                  f"the export length: {type(exc).__name__}); export a TorchScript file "
                                  "(--out NAME.ts) or the PyTorch model file (NAME.pt) for this backbone") from None
        worst = max(worst, float((ref - got).abs().max()))
    return worst


def _finish(tmp: Path, path: Path, denoiser: Denoiser, diff: float) -> Path:
    if diff > PARITY_TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"the exported {denoiser.net_name} differs from PyTorch by {diff:.2e} "
                          f"(> {PARITY_TOLERANCE:g}); not written")
    tmp.replace(path)
    return path


def export_onnx(denoiser: Denoiser, path: str | Path, frames: int = 200, opset: int = 17) -> tuple[Path, float]:
    """Write the mask estimator as ONNX (atomically) after checking it against PyTorch at several lengths;
    returns (path, max |mask difference|)."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = MaskEstimator(denoiser)
    example = torch.rand(1, denoiser.frontend.n_freqs, frames)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with warnings.catch_warnings():  # the exporter's notes (traced ints, constant folding) are checked below
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(tmp), input_names=["noisy_mag"], output_names=["mask"],
                              dynamic_axes={"noisy_mag": {0: "batch", 2: "frames"},
                                            "mask": {0: "batch", 2: "frames"}},
                              opset_version=opset, dynamo=False)
        proto = onnx.load(str(tmp))
        meta = proto.metadata_props.add()
        meta.key, meta.value = "denoiselab_spec", json.dumps(denoiser.spec())
        onnx.save(proto, str(tmp))
        diff = parity(denoiser, OnnxMaskEstimator(tmp, quiet=True))
    except ExportError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as err:  # an opset the graph's operators (or onnxruntime) do not support
        tmp.unlink(missing_ok=True)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ExportError(f"ONNX export at opset {opset} failed ({type(err).__name__}: {first}); opset 17, the "
                          "default, is the one tested") from err
    return _finish(tmp, path, denoiser, diff), diff


def export_torchscript(denoiser: Denoiser, path: str | Path, frames: int = 64) -> tuple[Path, float]:
    """Write the traced mask estimator (atomically) after the same parity check; (path, max difference)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():  # tracer notes and TorchScript's deprecation notice; parity is checked
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(MaskEstimator(denoiser), torch.rand(1, denoiser.frontend.n_freqs, frames))
        traced.save(str(tmp))
        reloaded = torch.jit.load(str(tmp))
    try:
        diff = parity(denoiser, reloaded)
    except ExportError:
        tmp.unlink(missing_ok=True)
        raise
    return _finish(tmp, path, denoiser, diff), diff


class OnnxMaskEstimator:
    """|S| -> noise mask with an exported graph in onnxruntime; a Denoiser's ``mask_estimator``."""

    def __init__(self, onnx_path: str | Path, threads: int | None = None, quiet: bool = False):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("ONNX models need the optional extra: pip install 'denoiselab[onnx]'") from None
        opts = ort.SessionOptions()
        if quiet:  # a failing parity run is reported by ExportError, not by onnxruntime's own log
            opts.log_severity_level = 4
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, noisy_mag: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"noisy_mag": noisy_mag.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(out).to(noisy_mag.device)
