"""Spectral front end: STFT/iSTFT, magnitude compression and feature normalisation.

All of it runs on the model's device. The normalisation statistics are buffers, so they travel
in every checkpoint and inference file and inference sees exactly what training saw.
"""

from __future__ import annotations

import torch
from torch import nn

WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window,
           "sqrt_hann": lambda n, **kw: torch.hann_window(n, **kw).sqrt()}
COMPRESSIONS = ("log1p", "power", "none")


class SpectralFrontEnd(nn.Module):
    """STFT with a fixed window, magnitude compression, and per-frequency feature normalisation.

    compression: ``log1p`` (log(1 + m)), ``power`` (m ** power, e.g. 0.3) or ``none``.
    norm_warmup_batches: the per-bin mean/std of the compressed magnitude are accumulated over
    the first N training batches and then frozen (0 disables normalisation).
    """

    def __init__(self, n_fft: int = 512, hop_length: int = 128, win_length: int | None = None,
                 window: str = "hann", center: bool = True, compression: str = "log1p",
                 power: float = 0.3, norm_warmup_batches: int = 50):
        super().__init__()
        win_length = win_length or n_fft
        if n_fft <= 0 or hop_length <= 0 or win_length <= 0:
            raise ValueError(f"STFT sizes must be positive: n_fft={n_fft} hop_length={hop_length} "
                             f"win_length={win_length}")
        if win_length > n_fft:
            raise ValueError(f"win_length ({win_length}) must be <= n_fft ({n_fft})")
        if hop_length > win_length:
            raise ValueError(f"hop_length ({hop_length}) must be <= win_length ({win_length}) for perfect "
                             "reconstruction")
        if window not in WINDOWS:
            raise ValueError(f"window={window!r} is not allowed; choose one of {', '.join(WINDOWS)}")
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression={compression!r} is not allowed; choose one of {', '.join(COMPRESSIONS)}")
        self.config = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
                           center=center, compression=compression, power=power,
                           norm_warmup_batches=norm_warmup_batches)
        self.n_fft, self.hop_length, self.win_length, self.center = n_fft, hop_length, win_length, center
        self.compression, self.power = compression, float(power)
        self.register_buffer("window", WINDOWS[window](win_length), persistent=False)
        n = n_fft // 2 + 1
        self.register_buffer("feat_sum", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("feat_sqsum", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("feat_count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("norm_batches", torch.zeros((), dtype=torch.long))
        self.norm_warmup_batches = int(norm_warmup_batches)

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        """[..., T] -> complex [..., F, frames]."""
        shape = wave.shape
        spec = torch.stft(wave.reshape(-1, shape[-1]), self.n_fft, self.hop_length, self.win_length,
                          self.window.to(wave.device, wave.dtype), center=self.center, return_complex=True)
        return spec.reshape(*shape[:-1], *spec.shape[-2:])

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """complex [..., F, frames] -> [..., length]."""
        shape = spec.shape
        window = self.window.to(spec.device, spec.real.dtype)
        wave = torch.istft(spec.reshape(-1, *shape[-2:]), self.n_fft, self.hop_length, self.win_length,
                           window, center=self.center, length=length)
        return wave.reshape(*shape[:-2], length)

    def compress(self, mag: torch.Tensor) -> torch.Tensor:
        if self.compression == "log1p":
            return torch.log1p(mag)
        if self.compression == "power":
            return mag.clamp_min(1e-12).pow(self.power)
        return mag

    def decompress(self, feat: torch.Tensor) -> torch.Tensor:
        if self.compression == "log1p":
            return torch.expm1(feat)
        if self.compression == "power":
            return feat.clamp_min(0).pow(1.0 / self.power)
        return feat

    @torch.no_grad()
    def update_norm(self, feat: torch.Tensor) -> None:
        """Accumulate per-bin statistics of features [B, F, T] during the warm-up batches."""
        if int(self.norm_batches) >= self.norm_warmup_batches:
            return
        x = feat.detach().double().transpose(0, 1).reshape(feat.shape[1], -1)
        self.feat_sum += x.sum(1)
        self.feat_sqsum += (x * x).sum(1)
        self.feat_count += x.shape[1]
        self.norm_batches += 1

    def normalize(self, feat: torch.Tensor) -> torch.Tensor:
        if self.norm_warmup_batches <= 0 or float(self.feat_count) == 0:
            return feat
        mean = self.feat_sum / self.feat_count
        var = (self.feat_sqsum / self.feat_count - mean * mean).clamp_min(1e-10)
        return (feat - mean.to(feat.dtype)[:, None]) / var.sqrt().to(feat.dtype)[:, None]

    def features(self, mag: torch.Tensor, update: bool = False) -> torch.Tensor:
        feat = self.compress(mag)
        if update:
            self.update_norm(feat)
        return self.normalize(feat)
