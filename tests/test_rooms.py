"""Room reverberation: simulated banks are deterministic and cached, the target keeps the direct
sound, and mixtures stay consistent (noisy = clean target + what the model must remove)."""

import numpy as np
import pytest
import torch

from denoiselab.core.rooms import RoomAugment, reverberate
from denoiselab.training.data.mixing import Mixer

pytest.importorskip("pyroomacoustics")


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    return RoomAugment(rooms=6, p=1.0, cache_dir=str(tmp_path_factory.mktemp("rirs"))).bank(16000)


def test_bank_is_deterministic_cached_and_seed_dependent(bank, tmp_path):
    again = RoomAugment(rooms=6, p=1.0, cache_dir=str(tmp_path)).bank(16000)
    assert torch.equal(bank.speech, again.speech) and torch.equal(bank.noise, again.noise)
    assert list((tmp_path / "rirs").glob("*.npz"))  # cached for the next run
    other = RoomAugment(rooms=6, p=1.0, seed=1000).bank(16000)
    assert not torch.equal(bank.speech, other.speech)  # held-out rooms are other rooms
    # the direct path's peak (1) at 2.5 ms; the early part = the first 50 ms after it
    assert torch.allclose(bank.speech[:, 40].abs(), torch.ones(6)) and (bank.speech[:, 41:].abs() <= 1 + 1e-6).all()
    assert torch.count_nonzero(bank.early[:, 841:]) == 0
    assert torch.allclose(bank.early[:, :740], bank.speech[:, :740])
    assert (bank.rt60 >= 0.15).all() and (bank.rt60 <= 0.9).all()


def test_reverberation_keeps_the_direct_sound_in_the_target_and_leaves_dry_rows_alone(bank):
    g = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(2, 32000, generator=g) * 0.1, torch.randn(2, 32000, generator=g) * 0.1
    heard, target, rev_noise = reverberate(clean, noise, torch.tensor([3, -1]), bank)
    assert torch.equal(heard[1], clean[1]) and torch.equal(target[1], clean[1]) and torch.equal(rev_noise[1], noise[1])
    lag = int(np.argmax(np.correlate(target[0, :4000].numpy(), clean[0, :4000].numpy(), "full"))) - 3999
    assert lag == 40  # the 2.5 ms lead of every response: target and input are delayed alike
    late = heard[0] - target[0]  # late reverberation: what the model must remove with the noise
    assert late.pow(2).sum() > 0.01 * target[0].pow(2).sum()


def test_mixer_with_rooms_hits_the_snr_at_the_microphone_and_stays_consistent(bank):
    mixer = Mixer(mode="snr", snr_db=(5.0, 5.0), peak_normalize=False)
    g = torch.Generator().manual_seed(1)
    batch = {"clean": torch.randn(3, 16000, generator=g) * 0.1, "noise": torch.randn(3, 1, 16000, generator=g) * 0.1,
             "clean_gain": torch.ones(3), "noise_gain": torch.ones(3, 1), "snr_db": torch.full((3,), 5.0),
             "room_id": torch.tensor([0, 2, -1])}
    out = mixer.mix(batch, 16000, rooms=bank)
    assert torch.allclose(out["noisy"], out["clean"] + out["noise"], atol=1e-6)
    # the dry row: SNR exactly 5 dB against its (dry) target
    dry = 10 * torch.log10(out["clean"][2].pow(2).sum() / out["noise"][2].pow(2).sum())
    assert abs(float(dry) - 5.0) < 0.01
    # reverberated rows: the model must remove more than the added noise (late reverberation too)
    heard, _, _ = reverberate(batch["clean"][:1], batch["noise"][:1, 0], torch.tensor([0]), bank)
    assert float((out["noisy"][0] - heard[0]).pow(2).sum()) < float(out["noise"][0].pow(2).sum())


def test_bad_room_settings_are_refused():
    with pytest.raises(ValueError, match="data.rooms.p must be a probability"):
        RoomAugment(p=1.5)
    with pytest.raises(ValueError, match="size_m"):
        RoomAugment(size_m=[[3, 3, 3], [2, 2, 2]])
