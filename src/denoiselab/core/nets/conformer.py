"""Conformer over frames: each frame's spectrum is one token; self-attention sees the whole
utterance and the convolution module the local context (torchaudio's Conformer blocks).

Why: frame-wise models cost far less per step on a CPU than 2-D convolutions over the full
spectrogram, and attention + depthwise convolution is the modern replacement for the LSTM.
"""

from __future__ import annotations

import torch
from torch import nn
from torchaudio.models import Conformer

from denoiselab.core.nets.blocks import per_channel
from denoiselab.core.nets.registry import register


@register("conformer")
class ConformerNet(nn.Module):
    def __init__(self, n_freqs: int, dim: int = 128, num_layers: int = 4, num_heads: int = 4, ffn_mult: int = 4,
                 kernel_size: int = 15, dropout: float = 0.0,
                 out_channels: int = 1):
        super().__init__()
        if dim < 1 or num_layers < 1 or num_heads < 1 or dim % num_heads:
            raise ValueError(f"conformer needs dim divisible by num_heads and >= 1 layer, got dim={dim}, "
                             f"num_heads={num_heads}, num_layers={num_layers}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"conformer kernel_size must be odd, got {kernel_size}")
        self.inp = nn.Sequential(nn.Linear(n_freqs, dim), nn.LayerNorm(dim))
        self.blocks = Conformer(input_dim=dim, num_heads=num_heads, ffn_dim=dim * ffn_mult, num_layers=num_layers,
                                depthwise_conv_kernel_size=kernel_size, dropout=dropout)
        self.out_channels = int(out_channels)
        self.out = nn.Linear(dim, n_freqs * self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x.transpose(1, 2)).transpose(0, 1)  # [T, B, dim], what the layers take
        # Every frame is valid, so no padding mask: the layers are called directly rather than through
        # Conformer.forward, whose mask from `lengths` makes exported graphs depend on the export length.
        for layer in self.blocks.conformer_layers:
            h = layer(h, None)
        return per_channel(self.out(h.transpose(0, 1)).transpose(1, 2), self.out_channels)
