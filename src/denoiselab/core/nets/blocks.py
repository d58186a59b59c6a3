"""Building blocks shared by several backbones (asteroid's ``masknn`` idea): one copy each."""

from __future__ import annotations

import torch
from torch import nn


def per_channel(y: torch.Tensor, channels: int) -> torch.Tensor:
    """[B, C*F, T] from a frame-wise output layer -> [B, F, T] (one channel) or [B, C, F, T]."""
    if channels == 1:
        return y
    b, cf, t = y.shape
    return y.reshape(b, channels, cf // channels, t)


def halved_sizes(n_freqs: int, layers: int) -> list[int]:
    """Frequency sizes before and after each stride-2 encoder layer (padding keeps ceil(f / 2))."""
    sizes = [n_freqs]
    for _ in range(layers):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


def fit_freq(h: torch.Tensor, size: int) -> torch.Tensor:
    """Crop or zero-pad the frequency axis (dim 2) of a decoder output to its encoder's size."""
    return h[:, :, :size] if h.shape[2] >= size else nn.functional.pad(h, (0, 0, 0, size - h.shape[2]))


class DualPathBlock(nn.Module):
    """Intra-frame bidirectional GRU over bands, then inter-frame GRU over frames, each residual."""

    def __init__(self, channels: int, hidden_size: int, causal: bool):
        super().__init__()
        self.intra = nn.GRU(channels, hidden_size // 2, batch_first=True, bidirectional=True)
        self.intra_proj = nn.Linear(2 * self.intra.hidden_size, channels)
        self.intra_norm = nn.LayerNorm(channels)
        self.inter = nn.GRU(channels, hidden_size if causal else hidden_size // 2, batch_first=True,
                            bidirectional=not causal)
        self.inter_proj = nn.Linear(self.inter.hidden_size * (1 if causal else 2), channels)
        self.inter_norm = nn.LayerNorm(channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, c, f, t = h.shape
        x = h.permute(0, 3, 2, 1).reshape(b * t, f, c)            # sequences along frequency
        y, _ = self.intra(x)
        x = x + self.intra_norm(self.intra_proj(y))
        x = x.reshape(b, t, f, c).transpose(1, 2).reshape(b * f, t, c)  # sequences along time
        y, _ = self.inter(x)
        x = x + self.inter_norm(self.inter_proj(y))
        return x.reshape(b, f, t, c).permute(0, 3, 1, 2)
