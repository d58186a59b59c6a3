import numpy as np
import pytest

from denoiselab.evaluation import baselines as B
from denoiselab.evaluation import metrics as M

from conftest import speechlike


@pytest.mark.parametrize("name", ["specsub", "wiener"])
@pytest.mark.parametrize("noise_estimate", ["minstat", "leading"])
def test_dsp_baselines_improve_si_sdr_on_stationary_noise(name, noise_estimate):
    rng = np.random.default_rng(0)
    clean = np.concatenate([np.zeros(4000, np.float32), speechlike(3.0, 16000, rng)])
    noise = rng.standard_normal(clean.size).astype(np.float32) * 0.05
    noisy = clean + noise
    out = B.get_baseline(name)(noisy, 16000, noise=noise_estimate)
    assert out.shape == noisy.shape
    assert M.si_sdr(clean, out) > M.si_sdr(clean, noisy) + 3.0


def test_identity_and_unknown_baseline():
    x = np.random.default_rng(1).standard_normal(100).astype(np.float32)
    assert np.array_equal(B.get_baseline("noisy")(x, 16000), x)
    with pytest.raises(ValueError, match="allowed: noisy, specsub, wiener"):
        B.get_baseline("magic")
