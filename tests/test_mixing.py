import numpy as np
import pytest
import torch

from denoiselab.training.data.datamodule import MixtureDataModule
from denoiselab.training.data.datasets import EpochSampler, collate
from denoiselab.training.data.mixing import Mixer


def _batch(mixer: Mixer, n: int = 16, length: int = 4000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        p = mixer.draw(rng)
        items.append({"clean": torch.from_numpy(rng.standard_normal(length).astype(np.float32) * 0.1),
                      "noise": torch.from_numpy(
                          rng.standard_normal((mixer.noises_per_mixture, length)).astype(np.float32) * 0.1),
                      "clean_gain": torch.tensor(p["clean_gain"]), "noise_gain": torch.from_numpy(p["noise_gain"]),
                      "snr_db": torch.tensor(p["snr_db"])})
    return collate(items)


def _snr(clean, noise):
    return 10 * torch.log10(clean.double().pow(2).mean(-1) / noise.double().pow(2).mean(-1))


@pytest.mark.parametrize("k", [1, 3])
def test_snr_mode_hits_the_drawn_snr(k):
    mixer = Mixer(mode="snr", snr_db=(-5, 20), noises_per_mixture=k, peak_normalize=True, peak=0.5)
    batch = _batch(mixer)
    out = mixer.mix(batch)
    measured = _snr(out["clean"], out["noise"])
    assert torch.allclose(measured, batch["snr_db"].double(), atol=0.01)
    assert torch.allclose(out["noisy"], out["clean"] + out["noise"], atol=1e-6)
    assert out["noisy"].abs().max() <= 0.5 + 1e-6
    assert (batch["snr_db"] >= -5).all() and (batch["snr_db"] <= 20).all()


def test_gain_mode_stays_in_its_ranges():
    mixer = Mixer(mode="gain", clean_gain=(0.5, 3.0), noise_gain=(0.5, 3.0), peak_normalize=False)
    batch = _batch(mixer, n=200)
    assert batch["clean_gain"].min() >= 0.5 and batch["clean_gain"].max() <= 3.0
    assert batch["noise_gain"].min() >= 0.5 and batch["noise_gain"].max() <= 3.0
    out = mixer.mix(batch)
    ratio = out["clean"].norm(dim=-1) / batch["clean"].norm(dim=-1)
    assert torch.allclose(ratio, batch["clean_gain"], rtol=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    ({"mode": "loud"}, "data.mix.mode"),
    ({"snr_db": (20, -5)}, "reversed"),
    ({"clean_gain": (0.0, 1.0)}, "> 0"),
    ({"noises_per_mixture": 0}, "noises_per_mixture"),
    ({"peak": 1.5}, "peak"),
])
def test_bad_mix_settings_name_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Mixer(**kwargs)


def _val_bytes(corpus, cache_dir) -> bytes:
    dm = MixtureDataModule(clean=corpus["clean"], noise=corpus["noise"], val_clean=corpus["val_clean"],
                           val_noise=corpus["val_noise"], clip_seconds=1.0, batch_size=4, cache_dir=str(cache_dir),
                           mix={"mode": "snr"})
    dm.setup("fit")
    chunks = []
    for batch in dm.val_dataloader():
        out = dm.on_after_batch_transfer(batch, 0)
        chunks += [out["noisy"].numpy().tobytes(), out["clean"].numpy().tobytes()]
    return b"".join(chunks)


def test_validation_mixtures_are_byte_identical_across_runs(corpus, tmp_path):
    assert _val_bytes(corpus, tmp_path / "c1") == _val_bytes(corpus, tmp_path / "c2")


def test_training_mixtures_change_every_epoch_and_differ_between_ranks(corpus, cache_dir):
    dm = MixtureDataModule(clean=corpus["clean"], noise=corpus["noise"], clip_seconds=1.0, batch_size=4,
                           cache_dir=str(cache_dir))
    dm.setup("fit")
    ds = dm.train_set
    s0 = EpochSampler(len(ds), seed=1, rank=0, world_size=2)
    s1 = EpochSampler(len(ds), seed=1, rank=1, world_size=2)
    keys0, keys1 = list(s0), list(s1)
    assert not set(keys0) & set(keys1)
    s0.set_epoch(1)
    keys0_e1 = list(s0)
    assert not set(keys0) & set(keys0_e1)
    a, b = ds[keys0[0]], ds[keys0_e1[0]]
    assert not torch.equal(a["clean"], b["clean"]) or not torch.equal(a["noise"], b["noise"])
    # the same key always gives the same item (what makes resume exact)
    assert torch.equal(ds[keys0[0]]["clean"], ds[keys0[0]]["clean"])
