import pytest
import torch

from denoiselab.core.processors import Prediction
from denoiselab.training.losses import (
    CleanMaskLoss,
    CompressedMagnitudeLoss,
    MultiResolutionSTFTLoss,
    NoiseMaskLoss,
    SISDRLoss,
    WeightedSum,
    si_sdr,
)


def _pred(mask, noisy_mag, enhanced=None):
    """The Prediction of a magnitude mask on a real-valued spectrum (what noise_subtract makes)."""
    spec = noisy_mag.to(torch.complex64)
    return Prediction(spec, noisy_mag, spec * (1 - mask), raw=mask, mask=mask, enhanced=enhanced)


def test_noise_mask_loss_is_half_mean_squared_error():
    mag = torch.rand(2, 5, 7) + 0.5
    noise = mag * 0.3
    pred = _pred(torch.full_like(mag, 0.3), mag)
    assert NoiseMaskLoss()(pred, {"noise_mag": noise}).item() < 1e-12
    pred = _pred(torch.zeros_like(mag), mag)
    expected = 0.5 * noise.pow(2).mean()
    assert torch.isclose(NoiseMaskLoss()(pred, {"noise_mag": noise}), expected)


def test_clean_mask_loss_zero_for_ideal_mask():
    mag = torch.rand(2, 5, 7) + 0.5
    pred = _pred(torch.full_like(mag, 0.25), mag)
    assert CleanMaskLoss()(pred, {"clean_mag": 0.75 * mag}).item() < 1e-12


def test_si_sdr_is_scale_invariant_and_matches_a_known_mixture():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(1, 16000, generator=g)
    noise = torch.randn(1, 16000, generator=g)
    noise = noise - (noise * ref).sum() / (ref * ref).sum() * ref  # orthogonal to ref
    noise = noise * ref.norm() / noise.norm() / 10 ** (10 / 20)  # 10 dB below
    est = ref + noise
    assert abs(si_sdr(est, ref).item() - 10.0) < 0.05
    assert abs(si_sdr(3.7 * est, ref).item() - si_sdr(est, ref).item()) < 1e-3
    assert si_sdr(ref, ref).item() > 60


def test_waveform_losses_and_weighted_sum():
    g = torch.Generator().manual_seed(1)
    clean = torch.randn(2, 8000, generator=g)
    pred = _pred(torch.zeros(2, 3, 4), torch.ones(2, 3, 4), clean + 0.1 * torch.randn(2, 8000, generator=g))
    target = {"clean": clean, "noise_mag": torch.zeros(2, 3, 4)}
    perfect = _pred(torch.zeros(2, 3, 4), torch.ones(2, 3, 4), clean)
    mr = MultiResolutionSTFTLoss()
    assert mr(perfect, target) < mr(pred, target)
    assert SISDRLoss()(perfect, target) < SISDRLoss()(pred, target)
    total = WeightedSum({"a": NoiseMaskLoss(), "b": SISDRLoss()}, {"a": 1.0, "b": 0.5})(pred, target)
    assert torch.isclose(total, SISDRLoss()(pred, target) * 0.5)


def test_compressed_magnitude_loss_weighs_quiet_bins_like_loud_ones():
    from denoiselab.training.losses import CompressedMagnitudeLoss

    clean = torch.tensor([[[10.0], [0.01]]])  # one loud, one quiet bin
    noisy = clean * 2
    loss = CompressedMagnitudeLoss(power=0.3, eps=0.0)
    assert loss(_pred(torch.full_like(noisy, 0.5), noisy), {"clean_mag": clean}).item() < 1e-12
    # the same 10 % magnitude error in either bin
    loud = loss(_pred(torch.tensor([[[0.45], [0.5]]]), noisy), {"clean_mag": clean})
    quiet = loss(_pred(torch.tensor([[[0.5], [0.45]]]), noisy), {"clean_mag": clean})
    plain = CleanMaskLoss()
    loud_plain = plain(_pred(torch.tensor([[[0.45], [0.5]]]), noisy), {"clean_mag": clean})
    quiet_plain = plain(_pred(torch.tensor([[[0.5], [0.45]]]), noisy), {"clean_mag": clean})
    assert loud_plain / quiet_plain > 1e5  # uncompressed: the loud bin dominates by (1000)^2
    expected = 1000 ** 0.6  # compressed with c = 0.3: the ratio shrinks to (1000)^(2c)
    assert abs((loud / quiet).item() / expected - 1) < 1e-3
    with pytest.raises(ValueError, match="loss power must be in"):
        CompressedMagnitudeLoss(power=1.5)


def test_compressed_loss_config_composes_and_is_minimal_at_the_ideal_mask(tmp_path):
    from hydra.utils import instantiate

    from hydra_helpers import compose_train

    cfg = compose_train(["loss=compressed"], tmp_path)
    loss = instantiate(cfg.loss)
    assert isinstance(loss, WeightedSum) and set(loss.terms) == {"compressed", "sisdr"}
    g = torch.Generator().manual_seed(2)
    clean = torch.randn(2, 8000, generator=g)
    mag = torch.rand(2, 5, 6, generator=g) + 0.1
    mask = torch.full_like(mag, 0.5, requires_grad=True)
    value = loss(_pred(mask, mag, clean * 0.9 + 0.1 * torch.randn(2, 8000, generator=g)),
                 {"clean": clean, "clean_mag": mag * 0.5})
    value.backward()
    assert torch.isfinite(value) and mask.grad is not None and mask.grad.abs().sum() == 0  # ideal mask: no gradient


def test_compressed_complex_loss_sees_phase_and_is_zero_when_exact():
    from denoiselab.training.losses import CompressedComplexLoss

    g = torch.Generator().manual_seed(3)
    clean = torch.complex(torch.randn(2, 5, 6, generator=g), torch.randn(2, 5, 6, generator=g))
    loss = CompressedComplexLoss(power=0.3, alpha=0.3)
    exact = Prediction(clean, clean.abs(), clean, raw=torch.zeros(1))
    assert loss(exact, {"clean_spec": clean}).item() < 1e-10
    flipped = Prediction(clean, clean.abs(), -clean, raw=torch.zeros(1))  # right magnitude, wrong phase
    assert loss(flipped, {"clean_spec": clean}).item() > 0.1
    assert CompressedMagnitudeLoss(eps=0.0)(flipped, {"clean_mag": clean.abs()}).item() < 1e-10  # blind to phase


def test_over_suppression_counts_speech_removed_where_speech_dominates():
    from denoiselab.training.losses import OverSuppressionLoss

    clean = torch.tensor([[[1.0], [0.1]]])   # bin 0: speech dominates; bin 1: noise dominates
    noise = torch.tensor([[[0.2], [1.0]]])
    mix = clean + noise
    loss = OverSuppressionLoss()
    cut_noise_bin = _pred(torch.tensor([[[0.15], [1.0]]]), mix)  # bin 1 removed entirely: fine
    cut_speech_bin = _pred(torch.tensor([[[0.9], [0.9]]]), mix)  # bin 0 cut far below its speech
    target = {"clean_mag": clean, "noise_mag": noise}
    assert loss(cut_noise_bin, target).item() < 1e-6
    assert loss(cut_speech_bin, target).item() > 0.1


def test_db_noise_loss_is_zero_at_the_true_noise_model():
    from denoiselab.training.losses import DbNoiseLoss

    noisy = torch.rand(1, 4, 5) + 0.5
    clean = noisy * 0.5  # 6.02 dB of noise model everywhere
    raw = torch.atanh(torch.full_like(noisy, (20 * torch.log10(torch.tensor(2.0)).item() - 6.0) / 82.0))
    pred = Prediction(noisy.to(torch.complex64), noisy, noisy.to(torch.complex64), raw=raw)
    assert DbNoiseLoss()(pred, {"clean_mag": clean}).item() < 1e-10
