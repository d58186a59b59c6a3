"""Training losses. Each takes (prediction, target) dicts and returns a scalar on the batch's device.

prediction: ``mask`` f, ``noisy_mag`` |S|, ``enhanced`` waveform.
target: ``clean``/``noise`` waveforms and ``clean_mag``/``noise_mag`` (|STFT| with the model's front end).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn


class NoiseMaskLoss(nn.Module):
    """The reference loss: 1/2 mean (f * |S| - |N|)^2, i.e. the mask must reproduce the noise spectrum."""

    def forward(self, pred: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return 0.5 * (pred["mask"] * pred["noisy_mag"] - target["noise_mag"]).pow(2).mean()


class CleanMaskLoss(nn.Module):
    """Clean-target variant: mean ((1 - f) * |S| - |C|)^2."""

    def forward(self, pred, target) -> torch.Tensor:
        return ((1.0 - pred["mask"]) * pred["noisy_mag"] - target["clean_mag"]).pow(2).mean()


class CompressedMagnitudeLoss(nn.Module):
    """mean (((1 - f) |S|)^c - |C|^c)^2: the clean-target loss on power-law compressed magnitudes.

    Compression (c = 0.3) evens out the weight of loud low-frequency bins against quiet
    high-frequency speech, which is what perceptual scores such as PESQ weigh (Braun & Tashev,
    "A consolidated view of loss functions for supervised deep learning-based speech enhancement", 2021).
    """

    def __init__(self, power: float = 0.3, eps: float = 1e-8):
        super().__init__()
        if not 0.0 < float(power) <= 1.0:
            raise ValueError(f"loss power must be in (0, 1], got {power}")
        self.power, self.eps = float(power), float(eps)

    def forward(self, pred, target) -> torch.Tensor:
        est = ((1.0 - pred["mask"]) * pred["noisy_mag"]).clamp_min(0.0) + self.eps
        ref = target["clean_mag"] + self.eps
        return (est.pow(self.power) - ref.pow(self.power)).pow(2).mean()


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1 of the enhanced waveform at several resolutions."""

    def __init__(self, fft_sizes=(512, 1024, 256), hop_sizes=(128, 256, 64), win_lengths=(512, 1024, 256)):
        super().__init__()
        if not (len(fft_sizes) == len(hop_sizes) == len(win_lengths)):
            raise ValueError("loss.fft_sizes, hop_sizes and win_lengths must have the same length")
        self.resolutions = list(zip(fft_sizes, hop_sizes, win_lengths))

    def forward(self, pred, target) -> torch.Tensor:
        est, ref = pred["enhanced"], target["clean"]
        total = est.new_zeros(())
        for n_fft, hop, win in self.resolutions:
            window = torch.hann_window(win, device=est.device, dtype=est.dtype)
            e = torch.stft(est, n_fft, hop, win, window, return_complex=True).abs().clamp_min(1e-7)
            r = torch.stft(ref, n_fft, hop, win, window, return_complex=True).abs().clamp_min(1e-7)
            sc = torch.linalg.norm(r - e, dim=(-2, -1)) / torch.linalg.norm(r, dim=(-2, -1)).clamp_min(1e-7)
            total = total + sc.mean() + (r.log() - e.log()).abs().mean()
        return total / len(self.resolutions)


def si_sdr(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SDR in dB over the last axis (zero-mean)."""
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * ref
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / ((est - target).pow(2).sum(-1) + eps))


class SISDRLoss(nn.Module):
    """Negative SI-SDR of the enhanced waveform against the clean one."""

    def forward(self, pred, target) -> torch.Tensor:
        return -si_sdr(pred["enhanced"], target["clean"]).mean()


class WeightedSum(nn.Module):
    """sum_i w_i * loss_i; each term is also reported separately (``last_terms``)."""

    def __init__(self, terms: Mapping[str, nn.Module], weights: Mapping[str, float]):
        super().__init__()
        missing = set(terms) ^ set(weights)
        if missing:
            raise ValueError(f"loss terms and weights must name the same losses; mismatch: {sorted(missing)}")
        self.terms = nn.ModuleDict(dict(terms))
        self.weights = {k: float(v) for k, v in weights.items()}
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, pred, target) -> torch.Tensor:
        values = {k: loss(pred, target) for k, loss in self.terms.items()}
        self.last_terms = {k: v.detach() for k, v in values.items()}
        return sum(self.weights[k] * v for k, v in values.items())
