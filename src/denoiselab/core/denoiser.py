"""The Denoiser: front end (STFT) -> mask estimator -> mask head -> decoder (iSTFT, noisy phase).

One object serves training, evaluation, enhancement and export, so there is exactly one way to
turn a noisy waveform into a denoised one. ``spec()`` describes it in plain data (no code
paths), which is what inference files store; ``Denoiser.from_spec`` rebuilds it. A mask estimator
that runs elsewhere (an ONNX graph in onnxruntime) is passed in as ``mask_estimator``; the STFT,
gain and iSTFT stay the same code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from denoiselab.core.errors import UserError
from denoiselab.core.nets import build_net, net_name
from denoiselab.core.spectral import SpectralFrontEnd

HEADS = ("mask", "noise")
SPEC_VERSION = 1


@dataclass
class DenoiserOutput:
    mask: torch.Tensor  # noise mask f in [0, 1], [B, F, T]
    noisy_spec: torch.Tensor  # complex STFT of the input
    noisy_mag: torch.Tensor  # |S|
    enhanced: torch.Tensor  # waveform [B, T]


class Denoiser(nn.Module):
    """Predicts the noise spectrum as a mask f on |S| and returns iSTFT((1 - f) |S| e^{j phase(S)}).

    head: ``mask`` (f = sigmoid(net)) or ``noise`` (the net predicts the compressed noise
    magnitude N^, and f = min(N^ / |S|, 1): classic subtraction with a zero floor).
    """

    def __init__(self, net: Callable[..., nn.Module] | dict, frontend: SpectralFrontEnd | dict,
                 sample_rate: int = 16000, head: str = "mask",
                 mask_estimator: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"model.head={head!r} is not allowed; choose one of {', '.join(HEADS)}")
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.frontend = frontend if isinstance(frontend, SpectralFrontEnd) else SpectralFrontEnd(**frontend)
        self.sample_rate, self.head = int(sample_rate), head
        if isinstance(net, dict):
            name, kwargs = net["name"], dict(net.get("kwargs", {}))
        elif isinstance(net, functools.partial):
            name, kwargs = net_name(net.func), _plain(dict(net.keywords))
        elif isinstance(net, type):
            name, kwargs = net_name(net), {}
        else:
            raise UserError(f"net must be a backbone class, a functools.partial of one, or {{'name', 'kwargs'}}; "
                            f"got {type(net).__name__} (on the command line, choose a backbone with model/net=NAME)")
        kwargs.pop("n_freqs", None)
        self.net_name, self.net_kwargs = name, kwargs
        self.net = build_net(name, self.frontend.n_freqs, **kwargs)
        #: |S| -> noise mask computed outside this module (e.g. onnxruntime); None: the net here
        self.mask_estimator = mask_estimator

    # ------------------------------------------------------------------ description
    def spec(self) -> dict[str, Any]:
        from denoiselab import __version__

        return {"spec_version": SPEC_VERSION, "denoiselab_version": __version__,
                "sample_rate": self.sample_rate, "head": self.head,
                "frontend": dict(self.frontend.config),
                "net": {"name": self.net_name, "kwargs": _plain(self.net_kwargs)}}

    @classmethod
    def from_spec(cls, spec: dict[str, Any],
                  mask_estimator: Callable[[torch.Tensor], torch.Tensor] | None = None) -> "Denoiser":
        if int(spec.get("spec_version", 0)) > SPEC_VERSION:
            raise ValueError(f"model file format {spec.get('spec_version')} is newer than this denoiselab "
                             f"understands ({SPEC_VERSION}); upgrade denoiselab")
        return cls(net=spec["net"], frontend=spec["frontend"], sample_rate=spec["sample_rate"], head=spec["head"],
                   mask_estimator=mask_estimator)

    @property
    def time_stride(self) -> int:
        """Frames by which the backbone pools time: its input length is padded to a multiple of it."""
        return int(getattr(self.net, "time_stride", 1))

    @property
    def alignment_samples(self) -> int:
        """Chunk starts must be multiples of this many samples for chunked == whole-file output."""
        return self.frontend.hop_length * self.time_stride

    @property
    def receptive_field_samples(self) -> int | None:
        """How far (samples, one side) an output sample can depend on the input; None when unbounded
        (recurrence or attention over the whole input: chunked output is then an approximation)."""
        frames = getattr(self.net, "receptive_frames", None)
        if frames is None:
            return None
        return int(frames) * self.frontend.hop_length + self.frontend.n_fft

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    # ------------------------------------------------------------------ computation
    def mask_from_features(self, noisy_mag: torch.Tensor, update_norm: bool = False) -> torch.Tensor:
        """|S| [B, F, T] -> noise mask f [B, F, T] in [0, 1]."""
        if self.mask_estimator is not None:
            return self.mask_estimator(noisy_mag)
        feats = self.frontend.features(noisy_mag, update=update_norm)
        frames = feats.shape[-1]
        pad = (-frames) % self.time_stride  # the net sees whole pooling units (zeros = the feature mean)
        logits = self.net(nn.functional.pad(feats, (0, pad)) if pad else feats)[..., :frames].float()
        if self.head == "mask":
            return torch.sigmoid(logits)
        noise_mag = self.frontend.decompress(nn.functional.softplus(logits))
        return (noise_mag / noisy_mag.clamp_min(1e-8)).clamp(0.0, 1.0)

    def forward(self, noisy: torch.Tensor, update_norm: bool = False, strength: float = 1.0,
                floor: float = 0.0) -> DenoiserOutput:
        """noisy [B, T] -> DenoiserOutput. strength scales the mask; floor bounds the gain from below."""
        spec = self.frontend.stft(noisy)
        mag = spec.abs()
        mask = self.mask_from_features(mag, update_norm)
        enhanced = self.decode(spec, mask, noisy.shape[-1], strength, floor)
        return DenoiserOutput(mask=mask, noisy_spec=spec, noisy_mag=mag, enhanced=enhanced)

    def decode(self, spec: torch.Tensor, mask: torch.Tensor, length: int, strength: float = 1.0,
               floor: float = 0.0) -> torch.Tensor:
        """Apply gain (1 - strength * f), floored, to the complex noisy spectrum and invert."""
        gain = (1.0 - strength * mask).clamp(min=floor, max=1.0)
        return self.frontend.istft(spec * gain.to(spec.real.dtype), length)

    @torch.no_grad()
    def enhance(self, noisy: torch.Tensor, strength: float = 1.0, floor: float = 0.0) -> torch.Tensor:
        return self.forward(noisy, strength=strength, floor=floor).enhanced


def _plain(obj: Any) -> Any:
    """Settings as plain Python values (safe for weights_only loading; the training layer turns
    config containers into dicts and lists before they get here)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"model settings must be plain values, got {type(obj).__name__}: {obj!r}")
