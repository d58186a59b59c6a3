"""Classic reference systems scored next to every model: identity, spectral subtraction, Wiener,
and noisereduce's spectral gating (optional extra).

Both DSP methods estimate the noise power per bin from the noisy signal alone: ``minstat``
(minimum statistics: the running minimum of the smoothed power over ~1.5 s, bias-compensated;
follows slowly varying noise) or ``leading`` (mean of the first 0.25 s, assumed speech-free).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

N_FFT, HOP = 512, 128


def _stft(x: np.ndarray) -> torch.Tensor:
    w = torch.hann_window(N_FFT)
    return torch.stft(torch.from_numpy(np.asarray(x, dtype=np.float32)), N_FFT, HOP, window=w, return_complex=True)


def _istft(spec: torch.Tensor, length: int) -> np.ndarray:
    return torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT), length=length).numpy()


def noise_psd(power: np.ndarray, sr: int, method: str = "minstat") -> np.ndarray:
    """Noise power per bin and frame [F, T] from the noisy power spectrogram."""
    frames_per_s = sr / HOP
    if method == "leading":
        n = max(1, int(0.25 * frames_per_s))
        return np.repeat(power[:, :n].mean(1, keepdims=True), power.shape[1], 1)
    if method != "minstat":
        raise ValueError(f"noise estimate {method!r} is not allowed; choose minstat or leading")
    from scipy.ndimage import minimum_filter1d
    from scipy.signal import lfilter

    # s_t = 0.85 s_{t-1} + 0.15 p_t, started at s_{-1} = p_0
    smooth = lfilter([0.15], [1.0, -0.85], power, axis=1, zi=0.85 * power[:, :1])[0]
    win = max(1, int(1.5 * frames_per_s))

    minimum = minimum_filter1d(smooth, size=win, axis=1, mode="nearest", origin=0)
    return 1.5 * minimum  # bias compensation of the minimum


def spectral_subtraction(x: np.ndarray, sr: int, noise: str = "minstat", alpha: float = 2.0,
                         beta: float = 0.02) -> np.ndarray:
    """Power spectral subtraction with over-subtraction ``alpha`` and spectral floor ``beta``."""
    spec = _stft(x)
    power = spec.abs().pow(2).numpy()
    n = noise_psd(power, sr, noise)
    clean_power = np.maximum(power - alpha * n, beta * power)
    gain = np.sqrt(clean_power / np.maximum(power, 1e-12))
    return _istft(spec * torch.from_numpy(gain.astype(np.float32)), len(x))


def wiener(x: np.ndarray, sr: int, noise: str = "minstat", dd: float = 0.98, floor: float = 0.05) -> np.ndarray:
    """Wiener gain with the decision-directed a priori SNR (Ephraim-Malah)."""
    spec = _stft(x)
    power = spec.abs().pow(2).numpy().astype(np.float64)
    n = np.maximum(noise_psd(power, sr, noise), 1e-12)
    gain = np.empty_like(power)
    prev = np.zeros(power.shape[0])
    for t in range(power.shape[1]):
        post = power[:, t] / n[:, t]
        prio = dd * prev / n[:, t] + (1 - dd) * np.maximum(post - 1, 0)
        g = np.maximum(prio / (1 + prio), floor)
        gain[:, t] = g
        prev = (g ** 2) * power[:, t]
    return _istft(spec * torch.from_numpy(gain.astype(np.float32)), len(x))


def noisereduce_gate(x: np.ndarray, sr: int) -> np.ndarray:
    try:
        import noisereduce
    except ImportError:
        raise ImportError("the noisereduce baseline needs: pip install 'denoiselab[noisereduce]'") from None
    return np.asarray(noisereduce.reduce_noise(y=x, sr=sr, stationary=False), dtype=np.float32)


BASELINES: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "noisy": lambda x, sr: np.asarray(x, dtype=np.float32),
    "specsub": spectral_subtraction,
    "wiener": wiener,
    "noisereduce": noisereduce_gate,
}


def get_baseline(name: str) -> Callable[[np.ndarray, int], np.ndarray]:
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; allowed: {', '.join(BASELINES)}")
    return BASELINES[name]


def available_baselines() -> list[str]:
    names = ["noisy", "specsub", "wiener"]
    try:
        import noisereduce  # noqa: F401
        names.append("noisereduce")
    except ImportError:
        pass
    return names
