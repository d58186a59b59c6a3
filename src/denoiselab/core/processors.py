"""Mask processors: how a backbone's raw output becomes the enhanced spectrum (NeMo's mask-processor stage).

A backbone maps features [B, F, T] to raw outputs ([B, F, T] or [B, C, F, T]) and knows nothing about
audio; the processor decides what those numbers mean. Each one owns
- how many output channels it needs (``channels``),
- the enhanced complex spectrum it makes of them, with ``strength`` (0 = input, 1 = full) and a gain
  ``floor`` (an attenuation limit),
- what it hands the losses: a ``Prediction`` (typed: every loss reads the same fields),
- its ONNX and chunked path: the exported graph stops at the raw output and the processor runs after it,
  unchanged; processors are pointwise in time except for the few past frames (``context_frames``) a
  multi-frame filter reads, which the receptive field (and so the chunk context) includes.

Registered: ``noise_subtract`` (the reference: a noise mask f on |S|, gain 1 - f, noisy phase; head ``mask``
or ``noise``), ``db_subtract`` (the seed code's variant: the noise in dB, subtracted in the dB domain) and
``complex`` (a complex noise mask subtracted from the complex noisy spectrum: phase-aware) and ``deep_filter``
(DeepFilterNet-style: a gain on every bin plus a complex multi-frame filter on the low bins, where speech
harmonics are resolved finer than one bin can represent). ``context_frames`` says how many past STFT frames a
processor reads, so the chunked enhancer keeps enough context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

PROCESSORS: dict[str, type["MaskProcessor"]] = {}


def safe_abs(z: torch.Tensor, eps: float = 1e-16) -> torch.Tensor:
    """|z| with a finite gradient at 0: torch's complex abs has a 0/0 gradient there, and a clip that
    is zero-padded or digitally silent has exact-zero STFT bins (its gradient would be NaN and spoil
    every weight)."""
    if not z.is_complex():
        return z.abs()
    return torch.sqrt(z.real.square() + z.imag.square() + eps)


def raise_magnitude(z: torch.Tensor, minimum: torch.Tensor | float) -> torch.Tensor:
    """z with its magnitude raised to ``minimum`` where it was below, phase kept: the attenuation limit of
    the complex processors (a gain floored at ``floor``, or a spectrum floored at ``floor |S|``)."""
    return z * torch.clamp(minimum / safe_abs(z), min=1.0)


@dataclass
class Prediction:
    """What the Denoiser made of a noisy batch: the fields every loss and metric reads."""

    noisy_spec: torch.Tensor      # complex STFT [B, F, T]
    noisy_mag: torch.Tensor       # |S|
    enhanced_spec: torch.Tensor   # complex [B, F, T]
    raw: torch.Tensor             # the backbone's output
    mask: torch.Tensor | None = None      # magnitude processors: the noise mask f in [0, 1]
    enhanced: torch.Tensor | None = None  # waveform [B, T]

    @property
    def enhanced_mag(self) -> torch.Tensor:
        return safe_abs(self.enhanced_spec)

    @property
    def removed_mag(self) -> torch.Tensor:
        """|S - S_hat|: the magnitude of what was subtracted (f |S| for the noise mask)."""
        return safe_abs(self.noisy_spec - self.enhanced_spec)

    def __getitem__(self, key: str) -> Any:  # dict-style access for losses written against the old dicts
        return getattr(self, key)


def register(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        PROCESSORS[name] = cls
        cls.registry_name = name
        return cls
    return wrap


class MaskProcessor(nn.Module):
    channels = 1
    #: past STFT frames an output frame reads besides its own (0: pointwise in time)
    context_frames = 0

    def __init__(self, **kwargs: Any):
        super().__init__()
        self.kwargs = kwargs

    def spec(self) -> dict[str, Any]:
        return {"name": self.registry_name, "kwargs": dict(self.kwargs)}

    def forward(self, raw: torch.Tensor, spec: torch.Tensor, mag: torch.Tensor, strength: float = 1.0,
                floor: float = 0.0) -> Prediction:
        raise NotImplementedError


@register("noise_subtract")
class NoiseSubtract(MaskProcessor):
    """The reference: noise mask f (``head=mask``: f = sigmoid(raw); ``head=noise``: the raw output is the
    compressed noise magnitude N^, f = min(N^ / |S|, 1)); gain (1 - strength f), floored; noisy phase."""

    def __init__(self, head: str = "mask", decompress: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__(head=head)
        if head not in ("mask", "noise"):
            raise ValueError(f"model.head={head!r} is not allowed; choose one of mask, noise")
        self.head, self.decompress = head, decompress

    def forward(self, raw, spec, mag, strength=1.0, floor=0.0):
        if self.head == "mask":
            f = torch.sigmoid(raw)
        else:
            f = (self.decompress(nn.functional.softplus(raw)) / mag.clamp_min(1e-8)).clamp(0.0, 1.0)
        gain = (1.0 - strength * f).clamp(min=floor, max=1.0)
        return Prediction(spec, mag, spec * gain.to(spec.real.dtype), raw, mask=f)


#: The seed code's dB scalers: features (dB + 46) / 50, noise model (dB - 6) / 82.
DB_IN, DB_OUT = (46.0, 50.0), (6.0, 82.0)


def to_db(mag: torch.Tensor, scale: float) -> torch.Tensor:
    """dB of a magnitude spectrum relative to the STFT window sum (a full-scale sine reads about -6 dB)."""
    return 20 * torch.log10(mag.clamp_min(1e-10) / scale)


@register("db_subtract")
class DbSubtract(MaskProcessor):
    """The seed code's variant: the net predicts the noise as noisy_dB - clean_dB, scaled (x - 6) / 82 and
    bounded by tanh like the seed's output layer; the clean magnitude is the noisy one minus that in dB
    (strength scales the dB subtraction, the floor bounds the gain), with the noisy phase. Its features
    are the dB magnitude scaled (x + 46) / 50 (``model.frontend.compression=db``)."""

    def __init__(self, window_sum: float = 256.0):
        super().__init__(window_sum=float(window_sum))
        self.window_sum = float(window_sum)

    def noise_db(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.tanh(raw) * DB_OUT[1] + DB_OUT[0]

    def forward(self, raw, spec, mag, strength=1.0, floor=0.0):
        gain = torch.pow(10.0, -strength * self.noise_db(raw) / 20.0).clamp(min=floor, max=1.0)
        return Prediction(spec, mag, spec * gain.to(spec.real.dtype), raw, mask=1.0 - gain)


@register("complex")
class ComplexSubtract(MaskProcessor):
    """Phase-aware: the net predicts a complex noise mask M = tanh(a) + j tanh(b) (two channels); the
    enhanced spectrum is S - strength M S (the complex noise spectrum subtracted from the complex noisy
    one), its gain magnitude floored at ``floor``."""

    channels = 2

    def forward(self, raw, spec, mag, strength=1.0, floor=0.0):
        m = torch.complex(torch.tanh(raw[:, 0]), torch.tanh(raw[:, 1]))
        gain = 1.0 - strength * m.to(spec.dtype)
        if floor > 0:
            gain = raise_magnitude(gain, floor)
        return Prediction(spec, mag, spec * gain, raw)


def past_frames(spec: torch.Tensor, order: int) -> torch.Tensor:
    """Complex [..., T] -> [..., T, order]: S(t - i) for i = 0 .. order - 1, zeros before the start (the frames a
    deep filter's taps weigh)."""
    frames = spec.shape[-1]
    padded = nn.functional.pad(torch.view_as_real(spec), (0, 0, order - 1, 0))
    padded = torch.view_as_complex(padded.contiguous())
    return torch.stack([padded[..., order - 1 - i:order - 1 - i + frames] for i in range(order)], -1)


@register("deep_filter")
class DeepFilter(MaskProcessor):
    """DeepFilterNet-style: channel 0 is a noise mask f on every bin (gain 1 - f, as ``noise_subtract``);
    on the lowest ``df_bins`` bins a complex filter over the current and ``order - 1`` past frames is added:
    Y(k, t) = (1 - f) S(k, t) + sum_i c_i(k, t) S(k, t - i), with c_i = tanh(a) + j tanh(b) from channels
    1 .. 2 order. A zero filter leaves the gain path alone, so training starts where noise_subtract does; the
    filter can then restore the phase and the harmonics between bins that a real gain cannot. Strength blends
    towards the input (S + strength (Y - S)); the floor keeps |Y| >= floor |S|."""

    def __init__(self, order: int = 5, df_bins: int = 96):
        if int(order) < 1 or int(df_bins) < 1:
            raise ValueError(f"deep_filter needs order >= 1 and df_bins >= 1, got order={order}, df_bins={df_bins}")
        super().__init__(order=int(order), df_bins=int(df_bins))
        self.order, self.df_bins = int(order), int(df_bins)
        self.channels = 1 + 2 * self.order
        self.context_frames = self.order - 1

    def forward(self, raw, spec, mag, strength=1.0, floor=0.0):
        f = torch.sigmoid(raw[:, 0])
        out = spec * (1.0 - f).to(spec.real.dtype)
        k = min(self.df_bins, spec.shape[-2])
        coef = torch.complex(torch.tanh(raw[:, 1:1 + self.order, :k]),
                             torch.tanh(raw[:, 1 + self.order:, :k])).to(spec.dtype)  # [B, order, k, T]
        taps = past_frames(spec[:, :k], self.order).movedim(-1, 1)  # [B, order, k, T]
        out = torch.cat([out[:, :k] + (coef * taps).sum(1), out[:, k:]], dim=1)
        if strength != 1.0:
            out = spec + strength * (out - spec)
        if floor > 0:
            out = raise_magnitude(out, floor * mag)
        return Prediction(spec, mag, out, raw)


def build_processor(name: str, **kwargs: Any) -> MaskProcessor:
    if name not in PROCESSORS:
        raise ValueError(f"model/mask_processor={name!r} is not allowed; choose one of {', '.join(sorted(PROCESSORS))}")
    return PROCESSORS[name](**kwargs)
