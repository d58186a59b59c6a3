"""Property-based checks of audio loading and mixing on random shapes, rates and values."""


import numpy as np
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from denoiselab.core import audio
from denoiselab.core.mixing import crop_or_pad, loop_crop
from denoiselab.training.data.datasets import collate
from denoiselab.training.data.mixing import Mixer

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

values = st.one_of(st.floats(-1, 1, width=32), st.sampled_from([0.0, np.nan, np.inf, -np.inf, 1e30]))


@SETTINGS
@given(frames=st.integers(0, 3000), channels=st.integers(1, 3),
       rate=st.sampled_from([1000, 8000, 16000, 22050, 44100, 96000]),
       special=st.lists(st.tuples(st.integers(0, 10_000), values), max_size=3))
def test_load_mono_returns_finite_resampled_audio_or_a_documented_error(tmp_path, frames, channels, rate, special):
    x = np.random.default_rng(frames).uniform(-0.5, 0.5, (frames, channels)).astype(np.float32)
    for pos, v in special:
        if frames:
            x[pos % frames, 0] = v
    path = tmp_path / f"f{frames}_{channels}_{rate}.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    try:
        y = audio.load_mono(path, 16000)
    except audio.AudioError as err:
        assert err.reason in ("empty recording (0 samples)", "contains NaN or Inf samples")
        assert frames == 0 or not np.isfinite(x).all()
        return
    assert np.isfinite(x).all() and frames > 0
    assert y.ndim == 1 and np.isfinite(y).all()
    assert abs(y.shape[0] - frames * 16000 / rate) <= 1


@SETTINGS
@given(length=st.integers(1, 4000), clip=st.integers(1, 3000), seed=st.integers(0, 2**16))
def test_crop_and_loop_always_give_the_requested_length(length, clip, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(length).astype(np.float32)
    assert crop_or_pad(x, clip, rng).shape == (clip,)
    y = loop_crop(x, clip, rng)
    assert y.shape == (clip,) and np.isfinite(y).all()


@SETTINGS
@given(batch=st.integers(1, 4), length=st.integers(1, 2000), k=st.integers(1, 3), mode=st.sampled_from(["gain", "snr"]),
       silent_noise=st.booleans(), silent_clean=st.booleans(), scale=st.floats(1e-6, 1e3), seed=st.integers(0, 999))
def test_mixing_never_produces_nan(batch, length, k, mode, silent_noise, silent_clean, scale, seed):
    rng = np.random.default_rng(seed)
    mixer = Mixer(mode=mode, noises_per_mixture=k)
    items = []
    for _ in range(batch):
        p = mixer.draw(rng)
        clean = np.zeros(length, np.float32) if silent_clean else rng.standard_normal(length).astype(np.float32) * scale
        noise = (np.zeros((k, length), np.float32) if silent_noise
                 else rng.standard_normal((k, length)).astype(np.float32) * scale)
        items.append({"clean": torch.from_numpy(clean), "noise": torch.from_numpy(noise),
                      "clean_gain": torch.tensor(p["clean_gain"]), "noise_gain": torch.from_numpy(p["noise_gain"]),
                      "snr_db": torch.tensor(p["snr_db"])})
    out = mixer.mix(collate(items))
    for key in ("noisy", "clean", "noise"):
        assert torch.isfinite(out[key]).all(), key
    assert out["noisy"].abs().max() <= 0.99 + 1e-5
