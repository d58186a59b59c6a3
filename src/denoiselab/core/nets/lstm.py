"""LSTM over frames: each frame's spectrum is one step (bidirectional, or causal for streaming)."""

from __future__ import annotations

import torch
from torch import nn

from denoiselab.core.nets.blocks import per_channel
from denoiselab.core.nets.registry import register


@register("lstm")
class LSTMNet(nn.Module):
    def __init__(self, n_freqs: int, hidden_size: int = 256, num_layers: int = 2, bidirectional: bool = True,
                 dropout: float = 0.0, out_channels: int = 1):
        super().__init__()
        if hidden_size < 1 or num_layers < 1:
            raise ValueError(f"lstm needs hidden_size >= 1 and num_layers >= 1, got {hidden_size}, {num_layers}")
        self.inp = nn.Sequential(nn.Linear(n_freqs, hidden_size), nn.ReLU())
        self.rnn = nn.LSTM(hidden_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional,
                           dropout=dropout if num_layers > 1 else 0.0)
        self.out_channels = int(out_channels)
        self.out = nn.Linear(hidden_size * (2 if bidirectional else 1), n_freqs * self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.inp(x.transpose(1, 2)))
        return per_channel(self.out(h).transpose(1, 2), self.out_channels)
