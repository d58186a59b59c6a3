"""The builtin general-noise pool: the guard against forgetting when a lab has no folder of general noise."""

import numpy as np
import pytest

from denoiselab.training.data.general_pool import CLASSIC, EVERYDAY, builtin_noise_pool, everyday_noise


def test_the_pool_has_every_kind_the_same_on_every_run_and_babble_only_from_given_speech():
    rng = np.random.default_rng(0)
    speech = [np.sin(2 * np.pi * rng.uniform(100, 300) * np.arange(16000) / 16000) * rng.uniform(0.1, 1)
              for _ in range(6)]
    pool = builtin_noise_pool(16000, seconds=2.0, per_type=2, speech=speech)
    kinds = [k for k, _ in pool]
    assert set(kinds) == {*CLASSIC, *EVERYDAY, "babble"} and all(kinds.count(k) == 2 for k in set(kinds))
    again = builtin_noise_pool(16000, seconds=2.0, per_type=2, speech=speech)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(pool, again))
    for kind, x in pool:
        assert x.dtype == np.float32 and x.shape == (32000,) and np.isfinite(x).all(), kind
        assert np.abs(x).max() == pytest.approx(0.25, rel=1e-3), kind  # level is the mixer's to set
        assert float(np.std(x)) > 1e-3, kind  # not silence
    assert "babble" not in dict(builtin_noise_pool(16000, 2.0, 1))  # no speech given: no babble
    # another rate: the clips are resampled, not reinterpreted
    assert builtin_noise_pool(8000, seconds=2.0, per_type=1)[0][1].shape == (16000,)
    # the pool the device workflow was measured with: two clips of each classic kind, no everyday kinds
    classic = [k for k, _ in builtin_noise_pool(16000, seconds=2.0, speech=speech, pool="classic")]
    assert sorted(classic) == sorted(CLASSIC * 2)
    with pytest.raises(ValueError, match="'rare' is not one of full, classic"):
        builtin_noise_pool(16000, pool="rare")


def test_everyday_kinds_differ_in_where_their_energy_lies():
    """Each kind is what its name says, roughly: the engine's energy is low, crackle's high; bursts and calls
    come and go."""
    def low_share(x: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(x.size, 1 / 16000)
        return float(spec[f < 500].sum() / spec.sum())

    def gated(x: np.ndarray) -> float:  # the level of the loudest 10 % of 20 ms frames over the quietest 10 %
        frames = np.sqrt((x[: x.size // 320 * 320].reshape(-1, 320) ** 2).mean(1)) + 1e-9
        return float(20 * np.log10(np.quantile(frames, 0.9) / np.quantile(frames, 0.1)))

    noise = {k: everyday_noise(k, 4.0, np.random.default_rng(1)) for k in EVERYDAY}
    assert low_share(noise["engine"]) > 0.5 > 0.1 > low_share(noise["crackle"])
    assert gated(noise["bursts"]) > 10 and gated(noise["calls"]) > 10 and gated(noise["surf"]) < gated(noise["bursts"])
    with pytest.raises(ValueError, match="unknown everyday noise kind 'hiss'"):
        everyday_noise("hiss", 1.0, np.random.default_rng(0))
