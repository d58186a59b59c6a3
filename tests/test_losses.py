import pytest
import torch

from denoiselab.training.losses import (
    CleanMaskLoss,
    MultiResolutionSTFTLoss,
    NoiseMaskLoss,
    SISDRLoss,
    WeightedSum,
    si_sdr,
)


def test_noise_mask_loss_is_half_mean_squared_error():
    mag = torch.rand(2, 5, 7) + 0.5
    noise = mag * 0.3
    pred = {"mask": torch.full_like(mag, 0.3), "noisy_mag": mag}
    assert NoiseMaskLoss()(pred, {"noise_mag": noise}).item() < 1e-12
    pred["mask"] = torch.zeros_like(mag)
    expected = 0.5 * noise.pow(2).mean()
    assert torch.isclose(NoiseMaskLoss()(pred, {"noise_mag": noise}), expected)


def test_clean_mask_loss_zero_for_ideal_mask():
    mag = torch.rand(2, 5, 7) + 0.5
    pred = {"mask": torch.full_like(mag, 0.25), "noisy_mag": mag}
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
    pred = {"enhanced": clean + 0.1 * torch.randn(2, 8000, generator=g), "mask": torch.zeros(2, 3, 4),
            "noisy_mag": torch.ones(2, 3, 4)}
    target = {"clean": clean, "noise_mag": torch.zeros(2, 3, 4)}
    perfect = {**pred, "enhanced": clean}
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
    assert loss({"mask": torch.full_like(noisy, 0.5), "noisy_mag": noisy}, {"clean_mag": clean}).item() < 1e-12
    # the same 10 % magnitude error in either bin
    loud = loss({"mask": torch.tensor([[[0.45], [0.5]]]), "noisy_mag": noisy}, {"clean_mag": clean})
    quiet = loss({"mask": torch.tensor([[[0.5], [0.45]]]), "noisy_mag": noisy}, {"clean_mag": clean})
    plain = CleanMaskLoss()
    loud_plain = plain({"mask": torch.tensor([[[0.45], [0.5]]]), "noisy_mag": noisy}, {"clean_mag": clean})
    quiet_plain = plain({"mask": torch.tensor([[[0.5], [0.45]]]), "noisy_mag": noisy}, {"clean_mag": clean})
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
    value = loss({"mask": mask, "noisy_mag": mag, "enhanced": clean * 0.9 + 0.1 * torch.randn(2, 8000, generator=g)},
                 {"clean": clean, "clean_mag": mag * 0.5})
    value.backward()
    assert torch.isfinite(value) and mask.grad is not None and mask.grad.abs().sum() == 0  # ideal mask: no gradient
