"""The Denoiser: front end (STFT) -> mask estimator -> mask head -> decoder (iSTFT, noisy phase).

One object serves training, evaluation, enhancement and export, so there is exactly one way to
turn a noisy waveform into a denoised one. ``spec()`` describes it in plain data (no code
paths), which is what inference files store; ``Denoiser.from_spec`` rebuilds it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from denoiselab.model.spectral import SpectralFrontEnd
from denoiselab.nets import build_net, net_name

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
                 sample_rate: int = 16000, head: str = "mask"):
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
            raise TypeError("net must be a backbone class, a functools.partial of one, or {'name', 'kwargs'}")
        kwargs.pop("n_freqs", None)
        self.net_name, self.net_kwargs = name, kwargs
        self.net = build_net(name, self.frontend.n_freqs, **kwargs)

    # ------------------------------------------------------------------ description
    def spec(self) -> dict[str, Any]:
        from denoiselab import __version__

        return {"spec_version": SPEC_VERSION, "denoiselab_version": __version__,
                "sample_rate": self.sample_rate, "head": self.head,
                "frontend": dict(self.frontend.config),
                "net": {"name": self.net_name, "kwargs": _plain(self.net_kwargs)}}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "Denoiser":
        if int(spec.get("spec_version", 0)) > SPEC_VERSION:
            raise ValueError(f"model file format {spec.get('spec_version')} is newer than this denoiselab "
                             f"understands ({SPEC_VERSION}); upgrade denoiselab")
        return cls(net=spec["net"], frontend=spec["frontend"], sample_rate=spec["sample_rate"], head=spec["head"])

    @property
    def alignment_samples(self) -> int:
        """Chunk starts must be multiples of this many samples for chunked == whole-file output."""
        return self.frontend.hop_length * int(getattr(self.net, "time_stride", 1))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    # ------------------------------------------------------------------ computation
    def mask_from_features(self, noisy_mag: torch.Tensor, update_norm: bool = False) -> torch.Tensor:
        feats = self.frontend.features(noisy_mag, update=update_norm)
        logits = self.net(feats).float()
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
    """Hydra/OmegaConf containers -> plain Python (safe for weights_only loading)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, (DictConfig, ListConfig)):
            obj = OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"model settings must be plain values, got {type(obj).__name__}: {obj!r}")
