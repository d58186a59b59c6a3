"""Dual-path convolutional recurrent network (DPCRN, Le et al. 2021 style).

A conv encoder halves the frequency axis per layer; at the bottleneck, dual-path blocks alternate
an intra-frame RNN (along frequency, within each frame: the spectral envelope and harmonics) and an
inter-frame RNN (along time, per frequency band: how each band evolves); a sub-pixel conv decoder
with skip connections restores the full resolution.

Why: the CRN flattens all bands into one LSTM input, so its recurrent layer is large and sees the
bands only as one vector; the dual-path split keeps the recurrent layers small (shared over bands
or frames) while still modelling both axes, which is what the DNS-challenge systems built on.
causal=True makes the time path unidirectional and every conv causal (streaming-friendly).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from denoiselab.core.nets.blocks import DualPathBlock, fit_freq, halved_sizes
from denoiselab.core.nets.registry import register


class _SubPixelUp(nn.Module):
    """Doubles the frequency axis: a conv makes 2x the channels, which are interleaved along
    frequency (sub-pixel convolution, in place of a transposed conv)."""

    def __init__(self, cin: int, cout: int, causal: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, (3, 2), padding=(1, 0))
        self.pad = (1, 0) if causal else (0, 1)  # kernel 2 over time: (t-1, t) or (t, t+1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.conv(F.pad(h, self.pad))
        b, c2, f, t = y.shape
        return y.reshape(b, 2, c2 // 2, f, t).permute(0, 2, 3, 1, 4).reshape(b, c2 // 2, 2 * f, t)


@register("dpcrn")
class DPCRN(nn.Module):
    def __init__(self, n_freqs: int, channels: tuple[int, ...] = (8, 16, 32, 64), blocks: int = 2,
                 hidden_size: int = 64, causal: bool = False, out_channels: int = 1):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise ValueError(f"dpcrn needs at least one encoder layer with >= 1 channel, got channels={channels}")
        if blocks < 1 or hidden_size < 2:
            raise ValueError(f"dpcrn needs blocks >= 1 and hidden_size >= 2, got {blocks}, {hidden_size}")
        self.time_pad = (1, 0) if causal else (0, 1)  # encoder kernel 2 over time, as in _SubPixelUp
        self.enc = nn.ModuleList([nn.Sequential(nn.Conv2d(cin, c, (5, 2), stride=(2, 1), padding=(2, 0)),
                                                nn.BatchNorm2d(c), nn.PReLU(c))
                                  for cin, c in zip((1, *channels[:-1]), channels)])
        self.sizes = halved_sizes(n_freqs, len(channels))
        self.dual_path = nn.Sequential(*[DualPathBlock(channels[-1], hidden_size, causal) for _ in range(blocks)])
        self.dec = nn.ModuleList()
        rev = list(reversed(channels))
        for i, c in enumerate(rev):
            cout = rev[i + 1] if i + 1 < len(rev) else channels[0]
            self.dec.append(nn.Sequential(_SubPixelUp(2 * c, cout, causal), nn.BatchNorm2d(cout), nn.PReLU(cout)))
        self.out_channels = int(out_channels)
        self.out = nn.Conv2d(channels[0], self.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(1)  # [B, 1, F, T]
        skips = []
        for enc in self.enc:
            h = enc(F.pad(h, self.time_pad))
            skips.append(h)
        h = self.dual_path(h)
        for i, (dec, skip) in enumerate(zip(self.dec, reversed(skips))):
            h = dec(torch.cat([h, skip], 1))
            h = fit_freq(h, self.sizes[len(self.sizes) - 2 - i])  # 2 * f' is f or f + 1
        y = self.out(h)
        return y[:, 0] if self.out_channels == 1 else y
