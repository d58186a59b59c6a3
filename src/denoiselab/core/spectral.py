"""Spectral front end: STFT/iSTFT, magnitude compression, ERB bands and feature normalisation.

All of it runs on the model's device. The normalisation statistics are buffers, so they travel
in every checkpoint and inference file and inference sees exactly what training saw.

``bands=erb``: features are ``n_bands`` ERB-spaced band energies instead of the n_fft/2 + 1 linear bins
(a band matrix pools |S|), and the backbone's output on bands is spread back to bins by its transpose
(each bin interpolated between the bands it falls into): a backbone that costs per frequency row runs
on 32 rows instead of 257 (GTCRN and DeepFilterNet do the same).
"""

from __future__ import annotations

import torch
from torch import nn

WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window,
           "sqrt_hann": lambda n, **kw: torch.hann_window(n, **kw).sqrt()}
COMPRESSIONS = ("log1p", "power", "none", "db")
BANDS = ("linear", "erb")


def erb_matrix(n_freqs: int, sample_rate: int, n_bands: int, f_min: float = 0.0) -> torch.Tensor:
    """Triangular ERB-scale filters [n_bands, n_freqs] (Glasberg & Moore ERB-rate), each row summing to 1;
    no band is empty (at most one band per bin at the low end)."""
    def erb(f):
        return 21.4 * torch.log10(1 + 0.00437 * f)

    freqs = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)
    edges_erb = torch.linspace(float(erb(torch.tensor(f_min))), float(erb(torch.tensor(sample_rate / 2.0))),
                               n_bands + 2, dtype=torch.float64)
    centres = (10 ** (edges_erb / 21.4) - 1) / 0.00437
    step = freqs[1] - freqs[0]
    w = torch.zeros(n_bands, n_freqs, dtype=torch.float64)
    for b in range(n_bands):
        lo, mid, hi = centres[b], centres[b + 1], centres[b + 2]
        hi, lo = torch.maximum(hi, mid + step), torch.minimum(lo, mid - step)  # at least the nearest bin
        up = (freqs - lo) / (mid - lo) if b > 0 else torch.ones_like(freqs)  # the first band reaches DC
        down = (hi - freqs) / (hi - mid) if b < n_bands - 1 else torch.ones_like(freqs)  # the last, Nyquist
        w[b] = torch.clamp(torch.minimum(up, down), min=0.0, max=1.0)
    return (w / w.sum(1, keepdim=True).clamp_min(1e-12)).float()


class SpectralFrontEnd(nn.Module):
    """STFT with a fixed window, magnitude compression, and per-frequency feature normalisation.

    compression: ``log1p`` (log(1 + m)), ``power`` (m ** power, e.g. 0.3) or ``none``.
    norm_warmup_batches: the per-bin mean/std of the compressed magnitude are accumulated over
    the first N training batches and then frozen (0 disables normalisation).
    """

    def __init__(self, n_fft: int = 512, hop_length: int = 128, win_length: int | None = None,
                 window: str = "hann", center: bool = True, compression: str = "log1p",
                 power: float = 0.3, norm_warmup_batches: int = 50, bands: str = "linear", n_bands: int = 32,
                 sample_rate: int = 16000):
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
        if bands not in BANDS:
            raise ValueError(f"model.frontend.bands={bands!r} is not allowed; choose one of {', '.join(BANDS)}")
        if bands == "erb" and not 4 <= int(n_bands) < n_fft // 2 + 1:
            raise ValueError(f"model.frontend.n_bands must be in [4, {n_fft // 2}], got {n_bands}")
        self.config = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
                           center=center, compression=compression, power=power,
                           norm_warmup_batches=norm_warmup_batches)
        if bands != "linear":  # older model files carry no band settings: keep their spec unchanged
            self.config.update(bands=bands, n_bands=int(n_bands), sample_rate=int(sample_rate))
        self.bands = bands
        self.n_fft, self.hop_length, self.win_length, self.center = n_fft, hop_length, win_length, center
        self.compression, self.power = compression, float(power)
        self.register_buffer("window", WINDOWS[window](win_length), persistent=False)
        if bands == "erb":
            pool = erb_matrix(n_fft // 2 + 1, int(sample_rate), int(n_bands))
            spread = pool.t() / pool.t().sum(1, keepdim=True).clamp_min(1e-12)  # each bin: weights sum to 1
            self.register_buffer("band_pool", pool, persistent=False)
            self.register_buffer("band_spread", spread, persistent=False)
        n = self.n_features if bands == "erb" else n_fft // 2 + 1
        self.register_buffer("feat_sum", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("feat_sqsum", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("feat_count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("norm_batches", torch.zeros((), dtype=torch.long))
        self.norm_warmup_batches = int(norm_warmup_batches)

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def n_features(self) -> int:
        """Rows of the feature plane the backbone sees: bins, or ERB bands."""
        return int(self.config.get("n_bands", 0)) if self.bands == "erb" else self.n_freqs

    def to_bands(self, mag: torch.Tensor) -> torch.Tensor:
        """[..., F, T] bins -> [..., bands, T] (identity for linear bins)."""
        if self.bands == "linear":
            return mag
        return torch.matmul(self.band_pool.to(mag.dtype), mag)

    def to_bins(self, out: torch.Tensor) -> torch.Tensor:
        """A backbone's output on bands [..., bands, T] -> bins [..., F, T] (identity for linear bins)."""
        if self.bands == "linear":
            return out
        return torch.matmul(self.band_spread.to(out.dtype), out)

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
        if self.compression == "db":  # the seed code's features: dB re the window sum, scaled (x + 46) / 50
            return (20 * torch.log10(mag.clamp_min(1e-10) / float(self.window.sum())) + 46.0) / 50.0
        if self.compression == "log1p":
            return torch.log1p(mag)
        if self.compression == "power":
            return mag.clamp_min(1e-12).pow(self.power)
        return mag

    def decompress(self, feat: torch.Tensor) -> torch.Tensor:
        if self.compression == "db":
            return float(self.window.sum()) * torch.pow(10.0, (feat * 50.0 - 46.0) / 20.0)
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
        """|S| [B, F, T] -> normalised, compressed features [B, n_features, T]."""
        feat = self.compress(self.to_bands(mag))
        if update:
            self.update_norm(feat)
        return self.normalize(feat)
