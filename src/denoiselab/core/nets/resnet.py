"""Residual dilated 1-D conv network over time, frequency bins as channels (TCN style).

Cheap on CPU and shift-equivariant in time; causal=True makes every frame see only the past.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from denoiselab.core.nets.blocks import per_channel
from denoiselab.core.nets.registry import register


class _ResBlock(nn.Module):
    def __init__(self, channels: int, dilation: int, kernel: int, causal: bool):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.causal = causal
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, bias=False)
        self.norm1 = nn.BatchNorm1d(channels)
        self.proj = nn.Conv1d(channels, channels, 1, bias=False)
        self.norm2 = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.pad, 0) if self.causal else (self.pad // 2, self.pad - self.pad // 2)
        h = F.relu(self.norm1(self.conv(F.pad(x, pad))))
        return F.relu(x + self.norm2(self.proj(h)))


@register("resnet")
class ResNet(nn.Module):
    def __init__(self, n_freqs: int, channels: int = 256, blocks: int = 8, kernel_size: int = 3,
                 max_dilation: int = 8, causal: bool = False, out_channels: int = 1):
        super().__init__()
        if blocks < 1 or channels < 1:
            raise ValueError(f"resnet needs blocks >= 1 and channels >= 1, got {blocks}, {channels}")
        self.inp = nn.Sequential(nn.Conv1d(n_freqs, channels, 1, bias=False), nn.BatchNorm1d(channels), nn.ReLU())
        dilations, d = [], 1
        for _ in range(blocks):
            dilations.append(d)
            d = 1 if d >= max_dilation else d * 2
        self.blocks = nn.Sequential(*[_ResBlock(channels, dl, kernel_size, causal) for dl in dilations])
        self.out_channels = int(out_channels)
        self.out = nn.Conv1d(channels, n_freqs * self.out_channels, 1)
        #: frames (one side) an output frame can depend on: the larger side of each block's padding
        self.receptive_frames = sum(b.pad if causal else b.pad - b.pad // 2 for b in self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_channel(self.out(self.blocks(self.inp(x))), self.out_channels)
