"""Bin refiner: a correction of a band model's output at STFT-bin resolution.

A backbone that predicts on ERB bands spreads its output back to bins by interpolation, so within a band
it cannot tell the harmonic of an engine or a rotor from the speech between those harmonics. The refiner is
a small causal convolution over bins and frames that reads the spread output and the bin's own spectral
shape (how far the bin stands above its neighbours, and above its frame's mean level) and adds a correction.
Its last layer starts at zero, so adding it to a trained model changes nothing until it is trained: that is
how fine-tuning adds it (``finetune.refine_bins``) and learns only what the bands missed.

It is part of the mask estimator (``Denoiser.estimate``): exported with the backbone to ONNX/TorchScript,
and its past frames count into the receptive field that the chunked enhancer keeps as context.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class BinRefiner(nn.Module):
    """raw output on bins [B, F, T] and |S| [B, F, T] -> raw + correction [B, F, T].

    channels: width of the two convolution layers; freq_kernel (odd) x time_kernel: each layer's kernel in
    bins x frames (causal in time); smooth_bins (odd): the neighbourhood a bin's level is compared with.
    """

    def __init__(self, channels: int = 8, freq_kernel: int = 5, time_kernel: int = 3, smooth_bins: int = 9):
        super().__init__()
        if int(channels) < 1 or int(time_kernel) < 1 or int(freq_kernel) % 2 == 0 or int(smooth_bins) % 2 == 0:
            raise ValueError("the bin refiner needs channels >= 1, time_kernel >= 1 and odd freq_kernel and "
                             f"smooth_bins; got channels={channels}, freq_kernel={freq_kernel}, "
                             f"time_kernel={time_kernel}, smooth_bins={smooth_bins}")
        self.config = dict(channels=int(channels), freq_kernel=int(freq_kernel), time_kernel=int(time_kernel),
                           smooth_bins=int(smooth_bins))
        self.freq_kernel, self.time_kernel, self.smooth_bins = int(freq_kernel), int(time_kernel), int(smooth_bins)
        kernel = (self.freq_kernel, self.time_kernel)
        self.inp = nn.Conv2d(3, int(channels), kernel)
        self.mid = nn.Conv2d(int(channels), int(channels), kernel)
        self.out = nn.Conv2d(int(channels), 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def context_frames(self) -> int:
        """Past frames an output frame reads besides its own."""
        return 2 * (self.time_kernel - 1)

    def _conv(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        half = self.freq_kernel // 2  # same size along frequency, causal along time (no future frames)
        return conv(nn.functional.pad(x, (self.time_kernel - 1, 0, half, half), mode="replicate"))

    def forward(self, raw: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
        level = torch.log1p(mag.to(raw.dtype))
        batch, bins, frames = level.shape
        rows = level.transpose(1, 2).reshape(batch * frames, 1, bins)
        around = nn.functional.avg_pool1d(rows, self.smooth_bins, stride=1, padding=self.smooth_bins // 2,
                                          count_include_pad=False)
        around = around.reshape(batch, frames, bins).transpose(1, 2)
        x = torch.stack([raw, level - around, level - level.mean(1, keepdim=True)], 1)
        h = nn.functional.relu(self._conv(self.inp, x))
        h = nn.functional.relu(self._conv(self.mid, h))
        return raw + self.out(h)[:, 0]


def build_refiner(settings: int | dict[str, Any] | None) -> BinRefiner | None:
    """``model.refine``: 0 / None (no refiner), a channel count, or the refiner's settings as a dict."""
    if not settings:
        return None
    if isinstance(settings, dict):
        return BinRefiner(**settings)
    return BinRefiner(channels=int(settings))
