"""The Denoiser: front end (STFT) -> mask estimator -> mask head -> decoder (iSTFT, noisy phase).

One object serves training, evaluation, enhancement and export, so there is exactly one way to
turn a noisy waveform into a denoised one. ``spec()`` describes it in plain data (no code
paths), which is what inference files store; ``Denoiser.from_spec`` rebuilds it. A mask estimator
that runs elsewhere (an ONNX graph in onnxruntime) is passed in as ``mask_estimator``; the STFT,
gain and iSTFT stay the same code.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch
from torch import nn

from denoiselab.core.errors import UserError
from denoiselab.core.nets import build_net, net_name
from denoiselab.core.processors import MaskProcessor, Prediction, build_processor
from denoiselab.core.spectral import SpectralFrontEnd

HEADS = ("mask", "noise")
#: 2: mask processors (spec["processor"]); files of version 1 (no processor) load as noise_subtract.
SPEC_VERSION = 2


class Denoiser(nn.Module):
    """encoder (STFT, features) -> mask estimator (backbone) -> mask processor -> decoder (iSTFT).

    processor: how the backbone's output becomes the enhanced spectrum (core.processors): the reference
    ``noise_subtract`` (a noise mask f on |S|, iSTFT((1 - f)|S| e^{j phase(S)})), ``db_subtract``,
    ``complex``, ``deep_filter``. head (``mask`` | ``noise``) is noise_subtract's setting, kept as a
    top-level argument for the configs and files that use it.
    """

    def __init__(self, net: Callable[..., nn.Module] | dict, frontend: SpectralFrontEnd | dict,
                 sample_rate: int = 16000, head: str = "mask",
                 mask_estimator: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 processor: str | dict | None = None):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"model.head={head!r} is not allowed; choose one of {', '.join(HEADS)}")
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if not isinstance(frontend, SpectralFrontEnd):
            frontend = dict(frontend)
            if frontend.get("bands", "linear") != "linear":
                frontend.setdefault("sample_rate", int(sample_rate))
            frontend = SpectralFrontEnd(**frontend)
        self.frontend = frontend
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
        kwargs.pop("out_channels", None)
        self.processor = self._build_processor(processor, head)
        if self.processor.registry_name == "db_subtract" and self.frontend.compression != "db":
            raise UserError("model/mask_processor=db_subtract works on the seed's dB features: set "
                            "model.frontend.compression=db (and norm_warmup_batches=0)")
        self.net_name, self.net_kwargs = name, kwargs
        extra = {"out_channels": self.processor.channels} if self.processor.channels > 1 else {}
        self.net = build_net(name, self.frontend.n_features, **kwargs, **extra)
        #: |S| -> the backbone's raw output computed outside this module (e.g. onnxruntime); None: the net here
        self.mask_estimator = mask_estimator

    def _build_processor(self, processor: str | dict | None, head: str) -> MaskProcessor:
        if processor is None:
            name, kwargs = "noise_subtract", {"head": head}
        elif isinstance(processor, str):
            name, kwargs = processor, {}
        else:
            name, kwargs = processor["name"], dict(processor.get("kwargs", {}))
        if name == "noise_subtract":
            kwargs.setdefault("head", head)
            kwargs["decompress"] = self.frontend.decompress
        elif name == "db_subtract":
            kwargs["window_sum"] = float(self.frontend.window.sum())
        return build_processor(name, **kwargs)

    # ------------------------------------------------------------------ description
    def spec(self) -> dict[str, Any]:
        from denoiselab import __version__

        spec = {"spec_version": SPEC_VERSION, "denoiselab_version": __version__,
                "sample_rate": self.sample_rate, "head": self.head,
                "frontend": dict(self.frontend.config),
                "net": {"name": self.net_name, "kwargs": _plain(self.net_kwargs)}}
        if self.processor.registry_name != "noise_subtract":  # older readers still load noise_subtract files
            spec["processor"] = _plain(self.processor.spec())
        return spec

    @classmethod
    def from_spec(cls, spec: dict[str, Any],
                  mask_estimator: Callable[[torch.Tensor], torch.Tensor] | None = None) -> "Denoiser":
        if int(spec.get("spec_version", 0)) > SPEC_VERSION:
            raise ValueError(f"model file format {spec.get('spec_version')} is newer than this denoiselab "
                             f"understands ({SPEC_VERSION}); upgrade denoiselab")
        return cls(net=spec["net"], frontend=spec["frontend"], sample_rate=spec["sample_rate"], head=spec["head"],
                   mask_estimator=mask_estimator, processor=spec.get("processor"))

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
        frames = int(frames) + self.processor.context_frames
        return frames * self.frontend.hop_length + self.frontend.n_fft

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    # ------------------------------------------------------------------ computation
    def estimate(self, noisy_mag: torch.Tensor, update_norm: bool = False) -> torch.Tensor:
        """|S| [B, F, T] -> the backbone's raw output on bins ([B, F, T] or [B, C, F, T]): the part that
        ONNX/TorchScript export and that an external ``mask_estimator`` replaces."""
        if self.mask_estimator is not None:
            return self.mask_estimator(noisy_mag)
        feats = self.frontend.features(noisy_mag, update=update_norm)
        frames = feats.shape[-1]
        pad = (-frames) % self.time_stride  # the net sees whole pooling units (zeros = the feature mean)
        raw = self.net(nn.functional.pad(feats, (0, pad)) if pad else feats)[..., :frames].float()
        return self.frontend.to_bins(raw)

    def predict_spectrum(self, noisy: torch.Tensor, update_norm: bool = False, strength: float = 1.0,
                         floor: float = 0.0) -> Prediction:
        """noisy [B, T] -> Prediction without the waveform (spectra, mask where there is one): for callers
        that compare spectra only, such as a fine-tuning teacher, the inverse STFT is skipped."""
        spec = self.frontend.stft(noisy)
        mag = spec.abs()
        return self.processor(self.estimate(mag, update_norm), spec, mag, strength, floor)

    def predict(self, noisy: torch.Tensor, update_norm: bool = False, strength: float = 1.0,
                floor: float = 0.0) -> Prediction:
        """noisy [B, T] -> Prediction (spectra, mask where there is one, waveform)."""
        out = self.predict_spectrum(noisy, update_norm, strength, floor)
        out.enhanced = self.frontend.istft(out.enhanced_spec, noisy.shape[-1])
        return out

    def forward(self, noisy: torch.Tensor, update_norm: bool = False, strength: float = 1.0,
                floor: float = 0.0) -> Prediction:
        return self.predict(noisy, update_norm, strength, floor)

    def mask_from_features(self, noisy_mag: torch.Tensor, update_norm: bool = False) -> torch.Tensor:
        """|S| -> noise mask f (magnitude processors): kept for the code that reads masks."""
        spec = noisy_mag.to(torch.complex64)
        out = self.processor(self.estimate(noisy_mag, update_norm), spec, noisy_mag)
        return out.mask if out.mask is not None else 1.0 - out.enhanced_mag / noisy_mag.clamp_min(1e-8)

    @torch.no_grad()
    def enhance(self, noisy: torch.Tensor, strength: float = 1.0, floor: float = 0.0) -> torch.Tensor:
        return self.predict(noisy, strength=strength, floor=floor).enhanced


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
