"""Training losses. Each takes (prediction, target) and returns a scalar on the batch's device.

prediction: a ``core.processors.Prediction`` (every mask processor fills the same fields):
``enhanced_spec`` / ``enhanced_mag`` / ``removed_mag`` (|S - S_hat|), ``noisy_mag`` |S|, ``enhanced`` waveform.
target: ``clean``/``noise`` waveforms, ``clean_spec`` and ``clean_mag``/``noise_mag`` (|STFT| with the
model's front end).
For the reference noise mask (enhanced = (1 - f) S), removed_mag is f |S| and enhanced_mag (1 - f) |S|,
so the losses below are the reference formulas; for the other processors they are their natural extension.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from denoiselab.core.processors import safe_abs


class NoiseMaskLoss(nn.Module):
    """The reference loss: 1/2 mean (f * |S| - |N|)^2, i.e. the mask must reproduce the noise spectrum."""

    def forward(self, pred, target: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return 0.5 * (pred.removed_mag - target["noise_mag"]).pow(2).mean()


class CleanMaskLoss(nn.Module):
    """Clean-target variant: mean ((1 - f) * |S| - |C|)^2."""

    def forward(self, pred, target) -> torch.Tensor:
        return (pred.enhanced_mag - target["clean_mag"]).pow(2).mean()


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
        est = pred.enhanced_mag + self.eps
        ref = target["clean_mag"] + self.eps
        return (est.pow(self.power) - ref.pow(self.power)).pow(2).mean()


def compressed(spec: torch.Tensor, power: float, eps: float = 1e-8) -> torch.Tensor:
    """|X|^c e^{j phase(X)}: the complex spectrum with power-law compressed magnitude."""
    mag = safe_abs(spec)
    return spec * ((mag + eps).pow(power) / (mag + eps))


class CompressedComplexLoss(nn.Module):
    """(1 - alpha) ||S_hat|^c - |C|^c|^2 + alpha |S_hat^c - C^c|^2 (c = 0.3, alpha = 0.3): the compressed
    magnitude plus the compressed complex spectrum, as GTCRN and DeepFilterNet train. The complex term
    is what makes a phase-aware processor learn phase; on a noisy-phase processor it still penalises
    where the noisy phase is wrong."""

    def __init__(self, power: float = 0.3, alpha: float = 0.3):
        super().__init__()
        if not 0.0 < float(power) <= 1.0 or not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"loss power must be in (0, 1] and alpha in [0, 1], got {power}, {alpha}")
        self.power, self.alpha = float(power), float(alpha)

    def forward(self, pred, target) -> torch.Tensor:
        est, ref = compressed(pred.enhanced_spec, self.power), compressed(target["clean_spec"], self.power)
        mag_term = (safe_abs(est) - safe_abs(ref)).pow(2).mean()
        diff = est - ref
        complex_term = (diff.real.square() + diff.imag.square()).mean()
        return (1.0 - self.alpha) * mag_term + self.alpha * complex_term


class OverSuppressionLoss(nn.Module):
    """mean(relu(|C|^c - |S_hat|^c)^2) over the bins where speech dominates (|C| > |N|): speech energy
    removed where there was mostly speech. Added to a main loss, it makes the model err towards leaving
    noise rather than cutting speech (the asymmetric losses of TEA-PSE and DPDFNet)."""

    def __init__(self, power: float = 0.3, eps: float = 1e-8):
        super().__init__()
        self.power, self.eps = float(power), float(eps)

    def forward(self, pred, target) -> torch.Tensor:
        speech = (target["clean_mag"] > target["noise_mag"]).to(pred.enhanced_mag.dtype)
        lost = torch.relu((target["clean_mag"] + self.eps).pow(self.power)
                          - (pred.enhanced_mag + self.eps).pow(self.power))
        return (lost.pow(2) * speech).sum() / speech.sum().clamp_min(1.0)


class DbNoiseLoss(nn.Module):
    """The seed code's loss for ``db_subtract``: Huber between the predicted noise model tanh(raw) and the
    true one, (noisy_dB - clean_dB - 6) / 82 (the seed's output scaler)."""

    def forward(self, pred, target) -> torch.Tensor:
        true_db = 20 * torch.log10(pred.noisy_mag.clamp_min(1e-10) / target["clean_mag"].clamp_min(1e-10))
        return nn.functional.huber_loss(torch.tanh(pred.raw), (true_db - 6.0) / 82.0)


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1 of the enhanced waveform at several resolutions."""

    def __init__(self, fft_sizes=(512, 1024, 256), hop_sizes=(128, 256, 64), win_lengths=(512, 1024, 256)):
        super().__init__()
        if not (len(fft_sizes) == len(hop_sizes) == len(win_lengths)):
            raise ValueError("loss.fft_sizes, hop_sizes and win_lengths must have the same length")
        self.resolutions = list(zip(fft_sizes, hop_sizes, win_lengths))

    def forward(self, pred, target) -> torch.Tensor:
        est, ref = pred.enhanced, target["clean"]
        total = est.new_zeros(())
        for n_fft, hop, win in self.resolutions:
            window = torch.hann_window(win, device=est.device, dtype=est.dtype)
            e = safe_abs(torch.stft(est, n_fft, hop, win, window, return_complex=True)).clamp_min(1e-7)
            r = safe_abs(torch.stft(ref, n_fft, hop, win, window, return_complex=True)).clamp_min(1e-7)
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
        return -si_sdr(pred.enhanced, target["clean"]).mean()


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
