"""2-D U-Net over the (frequency, time) plane: the reference backbone.

BatchNorm (not Group/InstanceNorm) on purpose: in eval mode it is a per-channel affine map, so
the output of a chunk does not depend on the rest of the file (needed for streaming inference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from denoiselab.core.nets.blocks import DualPathBlock
from denoiselab.core.nets.registry import register


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1),
    )


@register("unet")
class UNet(nn.Module):
    """depth levels of (2 convs + 2x2 pooling); channels double per level from base_channels.

    time_pool=False pools over frequency only: the net becomes shift-equivariant in time (exact
    chunked inference) at the price of a shorter temporal context.
    """

    def __init__(self, n_freqs: int, base_channels: int = 8, depth: int = 4, time_pool: bool = True,
                 dropout: float = 0.0, out_channels: int = 1):
        super().__init__()
        if depth < 1 or base_channels < 1:
            raise ValueError(f"unet needs depth >= 1 and base_channels >= 1, got {depth}, {base_channels}")
        self.depth, self.time_pool = depth, time_pool
        #: frames by which the time axis is pooled overall (chunk boundaries must align to it)
        self.time_stride = 2 ** depth if time_pool else 1
        chans = [base_channels * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(1 if i == 0 else chans[i - 1], chans[i]) for i in range(depth)])
        self.bottom = nn.Sequential(_block(chans[depth - 1], chans[depth]), nn.Dropout2d(dropout))
        stride = (2, 2) if time_pool else (2, 1)
        self.pool = nn.MaxPool2d(stride)
        self.up = nn.ModuleList([nn.ConvTranspose2d(chans[i + 1], chans[i], stride, stride=stride)
                                 for i in reversed(range(depth))])
        self.dec = nn.ModuleList([_block(2 * chans[i], chans[i]) for i in reversed(range(depth))])
        self.out_channels = int(out_channels)
        self.out = nn.Conv2d(chans[0], self.out_channels, 1)

    @property
    def receptive_frames(self) -> int:
        """Frames (one side) an output frame can depend on: an upper bound along the deepest path
        (two 3x3 convs per level down and up, the bottom block, pooling and upsampling offsets)."""
        if not self.time_pool:
            return 4 * self.depth + 2
        return 6 * (2 ** self.depth - 1) + 2 ** (self.depth + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_f, n_t = x.shape[-2:]
        mult = 2 ** self.depth
        pad_f = (-n_f) % mult
        pad_t = (-n_t) % mult if self.time_pool else 0
        h = F.pad(x.unsqueeze(1), (0, pad_t, 0, pad_f))
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottom(h)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            h = dec(torch.cat([up(h), skip], 1))
        y = self.out(h)[:, :, :n_f, :n_t]
        return y[:, 0] if self.out_channels == 1 else y


@register("dpunet")
class DualPathUNet(UNet):
    """The U-Net with dual-path RNN blocks at its bottleneck (a GRU along the bands of each frame,
    then a GRU along time per band, as in DPCRN). Why: the plain U-Net only sees the +-2**depth
    frames its convs reach; at the bottleneck the plane is 2**depth times smaller on both axes, so
    whole-utterance context is cheap (benchmarks/results/backbones.md: 620 steps in 12 minutes to the
    U-Net's 611)."""

    #: the time GRUs see the whole input: no bounded receptive field, chunking approximates
    receptive_frames = None

    def __init__(self, n_freqs: int, base_channels: int = 8, depth: int = 4, time_pool: bool = True,
                 dropout: float = 0.0, blocks: int = 2, hidden_size: int = 64, out_channels: int = 1):
        super().__init__(n_freqs, base_channels=base_channels, depth=depth, time_pool=time_pool, dropout=dropout,
                         out_channels=out_channels)
        if blocks < 1 or hidden_size < 2:
            raise ValueError(f"dpunet needs blocks >= 1 and hidden_size >= 2, got {blocks}, {hidden_size}")
        width = base_channels * 2 ** depth
        self.bottom.append(nn.Sequential(*[DualPathBlock(width, hidden_size, causal=False) for _ in range(blocks)]))
