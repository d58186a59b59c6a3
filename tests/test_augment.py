"""Device-path augmentations: what each one does to a mixture, and that only training sees them."""

import numpy as np
import pytest
import torch
from tests.hydra_helpers import compose_train, corpus_overrides

from denoiselab.training.data.augment import KEYS, DeviceAugment
from denoiselab.training.data.datamodule import MixtureDataModule
from denoiselab.training.data.datasets import collate
from denoiselab.training.data.mixing import Mixer

SR = 16000
OFF = dict(p_lowpass=0.0, p_highpass=0.0, p_eq=0.0, p_level=0.0, p_clip=0.0)


def _batch(mixer: Mixer, augment: DeviceAugment, n: int = 6, length: int = 8000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        p = mixer.draw(rng)
        items.append({"clean": torch.from_numpy(rng.standard_normal(length).astype(np.float32) * 0.05),
                      "noise": torch.from_numpy(rng.standard_normal((1, length)).astype(np.float32) * 0.05),
                      "clean_gain": torch.tensor(p["clean_gain"]), "noise_gain": torch.from_numpy(p["noise_gain"]),
                      "snr_db": torch.tensor(p["snr_db"]),
                      **{k: torch.tensor(v) for k, v in augment.draw(rng).items()}})
    return collate(items)


def _band_db(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    spec = torch.fft.rfft(x.double(), dim=-1).abs().pow(2)
    f = torch.fft.rfftfreq(x.shape[-1], 1 / SR)
    return 10 * torch.log10(spec[..., (f >= lo) & (f < hi)].mean(-1))


def test_lowpass_removes_the_top_band_of_the_speech_only():
    mixer = Mixer(mode="snr", snr_db=(10, 10), peak_normalize=False)
    augment = DeviceAugment(**{**OFF, "p_lowpass": 1.0, "lowpass_hz": (3500, 3500)})
    batch = _batch(mixer, augment)
    plain = mixer.mix({k: v for k, v in batch.items() if k not in KEYS})
    out = mixer.mix(batch, SR)
    drop = _band_db(plain["clean"], 6500, 8000) - _band_db(out["clean"], 6500, 8000)
    assert (drop > 15).all()  # a 2nd-order low-pass at 3.5 kHz: > 15 dB down above 6.5 kHz
    low = _band_db(plain["clean"], 100, 1500) - _band_db(out["clean"], 100, 1500)
    assert low.abs().max() < 1.0  # the pass band is kept
    # the SNR is measured on the coloured speech, so mixing still hits the drawn SNR
    snr = 10 * torch.log10(out["clean"].double().pow(2).mean(-1) / out["noise"].double().pow(2).mean(-1))
    assert torch.allclose(snr, torch.full_like(snr, 10.0), atol=0.01)


def test_level_and_clipping_keep_noisy_equal_to_clean_plus_noise():
    mixer = Mixer(mode="snr", snr_db=(0, 0), peak_normalize=False)
    augment = DeviceAugment(**{**OFF, "p_level": 1.0, "level_db": (-12, -12), "p_clip": 1.0,
                               "clip_fraction": (0.5, 0.5)})
    batch = _batch(mixer, augment)
    plain = mixer.mix({k: v for k, v in batch.items() if k not in KEYS})
    out = mixer.mix(batch, SR)
    level = 10 ** (-12 / 20)
    torch.testing.assert_close(out["clean"], plain["clean"] * level)  # the target is only scaled
    limit = plain["noisy"].abs().amax(-1) * level * 0.5
    torch.testing.assert_close(out["noisy"].abs().amax(-1), limit)  # clipped at half the peak
    clipped = (out["noisy"].abs() >= limit.unsqueeze(-1) * (1 - 1e-6)).float().mean()
    assert 0.01 < clipped < 0.5
    # the clipping distortion is part of the noise the model learns to remove
    torch.testing.assert_close(out["noisy"], out["clean"] + out["noise"])


def test_disabled_augment_leaves_the_mixture_unchanged():
    mixer = Mixer(mode="gain")
    batch = _batch(mixer, DeviceAugment(**OFF))
    plain = mixer.mix({k: v for k, v in batch.items() if k not in KEYS})
    out = mixer.mix(batch, SR)
    for k in ("noisy", "clean", "noise"):
        torch.testing.assert_close(out[k], plain[k])


def test_draws_are_deterministic_and_respect_probabilities():
    augment = DeviceAugment()
    a = [augment.draw(np.random.default_rng([1, k])) for k in range(400)]
    b = [augment.draw(np.random.default_rng([1, k])) for k in range(400)]
    assert a == b
    lowpass_on = np.mean([d["aug_lowpass_hz"] > 0 for d in a])
    clip_on = np.mean([d["aug_clip"] < 1 for d in a])
    assert 0.22 < lowpass_on < 0.38 and 0.05 < clip_on < 0.16
    on = [d["aug_lowpass_hz"] for d in a if d["aug_lowpass_hz"] > 0]
    assert min(on) >= 3400 and max(on) <= 7000


@pytest.mark.parametrize("kwargs, match", [
    ({"p_clip": 1.5}, "data.augment.p_clip must be a probability"),
    ({"level_db": (6, -20)}, "data.augment.level_db range is reversed"),
    ({"clip_fraction": (0.5, 1.5)}, "data.augment.clip_fraction must be <= 1"),
    ({"lowpass_hz": (0, 4000)}, "data.augment.lowpass_hz must be > 0"),
])
def test_bad_augment_settings_name_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeviceAugment(**kwargs)


def test_filter_above_nyquist_is_refused(corpus, cache_dir):
    with pytest.raises(ValueError, match=r"data.augment.lowpass_hz upper bound 7000 Hz must be below Nyquist"):
        MixtureDataModule(clean=corpus["clean"], noise=corpus["noise"], sample_rate=8000,
                          cache_dir=str(cache_dir), augment={})


def test_config_group_augments_training_but_not_validation(corpus, cache_dir, tmp_path):
    from hydra.utils import instantiate

    cfg = compose_train(["data/augment=device", "data.clip_seconds=1.0", *corpus_overrides(corpus, cache_dir)],
                        tmp_path)
    dm = instantiate(cfg.data)
    assert isinstance(dm.augment, DeviceAugment)
    dm.setup("fit")
    assert set(KEYS) <= set(dm.train_set[0])
    assert not set(KEYS) & set(dm.val_set[0])
    train = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    torch.testing.assert_close(train["noisy"], train["clean"] + train["noise"])
    assert compose_train(corpus_overrides(corpus, cache_dir), tmp_path).data.get("augment") is None
