"""Inference: model files, ``load_model`` and bounded-memory enhancement of any length, rate and channels.

Model files
  - inference file (``denoiselab-export``): {format, spec, state_dict} saved with torch.save, or a
    ``.safetensors`` file whose metadata holds the spec. Both load with weights_only semantics:
    no pickled code runs, and no training config or Hydra is needed.
  - a Lightning checkpoint from ``denoiselab-train`` works everywhere an inference file does.

Long files (overlap-save with frame-aligned chunks)
  The signal is cut into chunks whose starts are multiples of the model's alignment (STFT hop x
  the backbone's time pooling, and the resampling ratio). Each chunk is processed with
  ``context`` extra seconds on both sides, which are then discarded. For convolutional backbones
  (unet, resnet) whose receptive field fits in the context, chunked output equals whole-file
  output to float precision; backbones with recurrence or attention (lstm, crn, dpcrn, dpunet,
  conformer) see a truncated history, so their chunked output is an approximation. Memory
  depends on the chunk size, not the file length.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from denoiselab.model.denoiser import Denoiser

log = logging.getLogger(__name__)

INFERENCE_FORMAT = "denoiselab-inference"
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
DEFAULT_MODEL = PRETRAINED_DIR / "default.pt"


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
        torch.save({"format": INFERENCE_FORMAT, "spec": denoiser.spec(), "state_dict": state, "extra": extra or {}}, tmp)
    tmp.replace(path)
    return path


def load_denoiser(path: str | Path | None = None, map_location: str = "cpu") -> Denoiser:
    """Rebuild a Denoiser from an inference file or a Lightning checkpoint (weights_only loading)."""
    if path is None:
        if not DEFAULT_MODEL.is_file():
            raise FileNotFoundError("no model given and no pretrained default model is installed; "
                                    "pass --ckpt PATH (a denoiselab-train checkpoint or denoiselab-export file)")
        path = DEFAULT_MODEL
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.suffix == ".onnx":
        return _load_onnx(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device=map_location) as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != INFERENCE_FORMAT:
                raise ValueError(f"{path} is not a denoiselab model file (no '{INFERENCE_FORMAT}' metadata)")
            spec = json.loads(meta["spec"])
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    else:
        from denoiselab.model.module import CKPT_KEY
        from denoiselab.utils.checkpoints import load_checkpoint

        ckpt = load_checkpoint(path, map_location)
        if ckpt.get("format") == INFERENCE_FORMAT:
            spec, state = ckpt["spec"], ckpt["state_dict"]
        elif CKPT_KEY in ckpt and "state_dict" in ckpt:
            spec = ckpt[CKPT_KEY]["denoiser"]
            state = {k[len("denoiser."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("denoiser.")}
        else:
            raise ValueError(f"{path} is neither a denoiselab inference file nor a denoiselab-train checkpoint")
    denoiser = Denoiser.from_spec(spec)
    state = {k.replace("net._orig_mod.", "net."): v for k, v in state.items()}  # torch.compile'd nets
    denoiser.load_state_dict(state)
    return denoiser.eval()


def _load_onnx(path: Path) -> Denoiser:
    """A Denoiser whose mask comes from onnxruntime (STFT/iSTFT stay in torch)."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX models need the optional extra: pip install 'denoiselab[onnx]'") from None
    from denoiselab.export import OnnxDenoiser

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "denoiselab_spec" not in meta:
        raise ValueError(f"{path} has no denoiselab metadata; export it with denoiselab-export --format onnx")
    return OnnxDenoiser(path, Denoiser.from_spec(json.loads(meta["denoiselab_spec"])).eval()).bind()


# ---------------------------------------------------------------------- enhancement
@dataclass
class EnhanceStats:
    files: int = 0
    seconds_audio: float = 0.0
    seconds_compute: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rtf(self) -> float:
        return self.seconds_compute / self.seconds_audio if self.seconds_audio else math.nan


class Enhancer:
    """A loaded model plus the settings of how it is applied.

    strength: 0 returns the input, 1 applies the full mask (gain 1 - strength * f).
    atten_limit_db: never attenuate any bin by more than this many dB (a mask floor), e.g. 12;
    None means no limit. Both counter over-suppression; the floor keeps a little of the noise
    bed, which sounds more natural than a gated silence.
    """

    def __init__(self, denoiser: Denoiser, device: str | torch.device = "cpu", chunk_seconds: float = 10.0,
                 context_seconds: float = 1.5, batch_size: int = 1, strength: float = 1.0,
                 atten_limit_db: float | None = None):
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if atten_limit_db is not None and atten_limit_db < 0:
            raise ValueError(f"atten_limit_db must be >= 0 dB, got {atten_limit_db}")
        if chunk_seconds <= 0 or context_seconds < 0:
            raise ValueError("chunk_seconds must be > 0 and context_seconds >= 0")
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for, but no CUDA GPU is available")
        self.denoiser = denoiser.to(self.device).eval()
        self.chunk_seconds, self.context_seconds = float(chunk_seconds), float(context_seconds)
        self.batch_size = max(1, int(batch_size))
        self.strength = float(strength)
        self.floor = 0.0 if atten_limit_db is None else float(10 ** (-atten_limit_db / 20))

    @property
    def sample_rate(self) -> int:
        return self.denoiser.sample_rate

    # ---- core: model-rate segments -> model-rate output
    @torch.no_grad()
    def _denoise_segments(self, segments: list[torch.Tensor]) -> list[torch.Tensor]:
        n_fft = self.denoiser.frontend.n_fft
        if any(g.shape[-1] <= n_fft for g in segments):  # shorter than one frame: zero-pad, then trim
            lengths = [g.shape[-1] for g in segments]
            padded = [torch.nn.functional.pad(g, (0, max(0, n_fft + 1 - g.shape[-1]))) for g in segments]
            return [y[:n] for y, n in zip(self._denoise_segments(padded), lengths)]
        out = []
        for i in range(0, len(segments), self.batch_size):
            group = segments[i:i + self.batch_size]
            lengths = {g.shape[-1] for g in group}
            if len(lengths) == 1:
                x = torch.stack(group).to(self.device)
                y = self.denoiser.enhance(x, strength=self.strength, floor=self.floor)
                out.extend(y.float().cpu().unbind(0))
            else:
                for g in group:
                    y = self.denoiser.enhance(g[None].to(self.device), strength=self.strength, floor=self.floor)
                    out.append(y[0].float().cpu())
        return out

    def _unit(self, rate: int) -> int:
        """Chunk boundaries (in samples at ``rate``) that align with the model's frame/pooling grid."""
        model_rate = self.sample_rate
        g = math.gcd(rate, model_rate)
        q = self.denoiser.alignment_samples
        return (rate // g) * (q // math.gcd(q, model_rate // g))

    def process(self, read: Callable[[int, int], np.ndarray], total: int, rate: int,
                write: Callable[[np.ndarray], None], progress: Callable[[int], None] | None = None) -> None:
        """Stream [C, n] blocks from ``read(start, stop)`` (file rate) to ``write`` with bounded memory."""
        from denoiselab.audio import resample

        unit = self._unit(rate)
        chunk = max(unit, int(math.ceil(self.chunk_seconds * rate / unit)) * unit)
        ctx = int(math.ceil(self.context_seconds * rate / unit)) * unit
        starts = list(range(0, total, chunk))
        for s in starts:
            e = min(s + chunk, total)
            a, b = max(0, s - ctx), min(total, e + ctx)
            block = torch.from_numpy(np.ascontiguousarray(read(a, b), dtype=np.float32))  # [C, b - a]
            x = resample(block, rate, self.sample_rate)
            y = torch.stack(self._denoise_segments(list(x.unbind(0))))
            y = resample(y, self.sample_rate, rate)
            n = b - a
            y = y[:, :n] if y.shape[-1] >= n else torch.nn.functional.pad(y, (0, n - y.shape[-1]))
            write(y[:, s - a:e - a].numpy())
            if progress:
                progress(e - s)

    # ---- arrays
    def enhance(self, waveform: np.ndarray | torch.Tensor, sample_rate: int, downmix: bool = False):
        """Denoise [T] or [C, T] audio at any rate; returns the same type, shape (mono if downmix) and rate."""
        is_torch = isinstance(waveform, torch.Tensor)
        x = waveform.detach().cpu().float().numpy() if is_torch else np.asarray(waveform, dtype=np.float32)
        if x.ndim not in (1, 2):
            raise ValueError(f"waveform must be [samples] or [channels, samples], got shape {tuple(x.shape)}")
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if not np.isfinite(x).all():
            raise ValueError("waveform contains NaN or Inf samples")
        mono_in = x.ndim == 1
        x2 = x[None] if mono_in else x
        if downmix:
            x2 = x2.mean(0, keepdims=True)
        if x2.shape[-1] == 0:
            out = x2.copy()
        else:
            blocks: list[np.ndarray] = []
            self.process(lambda a, b: x2[:, a:b], x2.shape[-1], int(sample_rate), blocks.append)
            out = np.concatenate(blocks, -1)
        if mono_in or downmix:
            out = out[0]
        return torch.from_numpy(np.ascontiguousarray(out)).to(waveform.dtype) if is_torch else out


def load_model(path: str | Path | None = None, device: str = "cpu", **settings: Any) -> Enhancer:
    """Load a model file or checkpoint (None: the shipped default) -> Enhancer with ``.enhance``."""
    return Enhancer(load_denoiser(path), device=device, **settings)

