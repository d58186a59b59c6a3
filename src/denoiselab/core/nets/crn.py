"""Convolutional recurrent network (CRN, Tan & Wang 2018 style).

A conv encoder compresses frequency (stride 2 per layer), an LSTM models time at the
bottleneck, and a transposed-conv decoder with skip connections restores the frequency axis.
Convs see +-1 frame; long-range context comes from the LSTM (causal when bidirectional=False).
"""

from __future__ import annotations

import torch
from torch import nn

from denoiselab.core.nets.blocks import fit_freq, halved_sizes
from denoiselab.core.nets.registry import register


@register("crn")
class CRN(nn.Module):
    def __init__(self, n_freqs: int, channels: tuple[int, ...] = (16, 32, 64, 64), hidden_size: int = 256,
                 num_layers: int = 2, bidirectional: bool = False, out_channels: int = 1):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels:
            raise ValueError("crn needs at least one encoder layer (channels)")
        self.enc = nn.ModuleList()
        for cin, c in zip((1, *channels[:-1]), channels):
            self.enc.append(nn.Sequential(nn.Conv2d(cin, c, (3, 3), stride=(2, 1), padding=(1, 1), bias=False),
                                          nn.BatchNorm2d(c), nn.ELU()))
        self.sizes = halved_sizes(n_freqs, len(channels))
        feat = channels[-1] * self.sizes[-1]
        self.rnn = nn.LSTM(feat, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional)
        self.proj = nn.Linear(hidden_size * (2 if bidirectional else 1), feat)
        self.dec = nn.ModuleList()
        rev = list(reversed(channels))
        for i, c in enumerate(rev):
            cout = rev[i + 1] if i + 1 < len(rev) else 16
            self.dec.append(nn.Sequential(nn.ConvTranspose2d(2 * c, cout, (3, 3), stride=(2, 1), padding=(1, 1)),
                                          nn.BatchNorm2d(cout), nn.ELU()))
        self.out_channels = int(out_channels)
        self.out = nn.Conv2d(16, self.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(1)  # [B, 1, F, T]
        skips = []
        for enc in self.enc:
            h = enc(h)
            skips.append(h)
        b, c, f, t = h.shape
        r, _ = self.rnn(h.permute(0, 3, 1, 2).reshape(b, t, c * f))
        h = self.proj(r).reshape(b, t, c, f).permute(0, 2, 3, 1)
        for i, (dec, skip) in enumerate(zip(self.dec, reversed(skips))):
            h = dec(torch.cat([h, skip], 1))
            h = fit_freq(h, self.sizes[len(self.sizes) - 2 - i])
        y = self.out(h)
        return y[:, 0] if self.out_channels == 1 else y
