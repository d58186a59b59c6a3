import math

import numpy as np
import pytest

from denoiselab.core.mixing import snr_gain
from denoiselab.evaluation import metrics as M

from conftest import SHARED_DATA, speechlike


@pytest.fixture(scope="module")
def speech():
    rng = np.random.default_rng(0)
    return np.concatenate([speechlike(1.5, 16000, rng) for _ in range(3)])


def _noisy(x, snr_db, seed=1):
    n = np.random.default_rng(seed).standard_normal(x.size).astype(np.float32)
    n = n * snr_gain(x, n, snr_db)
    return x + n


def test_pesq_and_stoi_of_identical_signals_are_at_their_maximum(speech):
    s = M.score(speech, 16000, speech, ["pesq_wb", "pesq_nb", "stoi", "estoi", "seg_snr"])
    assert s["pesq_wb"] > 4.5 and s["pesq_nb"] > 4.4
    assert s["stoi"] > 0.999 and s["estoi"] > 0.999
    assert s["seg_snr"] == pytest.approx(35.0)


def test_scores_fall_monotonically_with_noise(speech):
    rows = [M.score(_noisy(speech, snr), 16000, speech, ["pesq_wb", "estoi", "si_sdr", "snr"]) for snr in (20, 10, 0)]
    for m in ("pesq_wb", "estoi", "si_sdr", "snr"):
        assert rows[0][m] > rows[1][m] > rows[2][m], m
    assert rows[1]["snr"] == pytest.approx(10.0, abs=0.01)


def test_si_sdr_is_scale_invariant_and_known_for_a_known_mixture(speech):
    y = _noisy(speech, 5.0)
    assert M.si_sdr(speech, 0.3 * y) == pytest.approx(M.si_sdr(speech, y), abs=1e-6)
    # noise independent of the speech -> SI-SDR close to the SNR
    assert M.si_sdr(speech, y) == pytest.approx(5.0, abs=0.3)


def test_unscorable_file_gives_nan_not_an_exception(caplog):
    silent = np.zeros(16000, dtype=np.float32)
    assert math.isnan(M.pesq(silent, silent, 16000, "wb"))
    assert "PESQ-WB cannot score" in caplog.text


def test_other_rates_are_resampled_and_recorded(speech):
    from denoiselab.core.audio import resample

    x48 = resample(speech, 16000, 48000)
    s = M.score(x48, 48000, x48, ["pesq_wb"])
    assert s["pesq_wb"] > 4.4 and s["pesq_resampled_from"] == "48000"


def test_parallel_scoring_matches_serial(speech):
    items = [(_noisy(speech, snr, seed), 16000, speech) for seed, snr in enumerate((0, 10))]
    serial = M.score_many(items, ["pesq_wb", "stoi"], num_workers=0)
    parallel = M.score_many(items, ["pesq_wb", "stoi"], num_workers=2)
    assert serial == parallel


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="unknown metric"):
        M.score(np.zeros(10), 16000, np.zeros(10), ["mos9000"])


@pytest.mark.skipif(not M.dnsmos_available(), reason="dnsmos extra not installed")
def test_dnsmos_ranks_clean_speech_above_noisy_speech(speech):
    real = sorted((SHARED_DATA / "dev" / "clean").glob("*.flac"))
    if real:
        import soundfile as sf

        clean, sr = sf.read(real[0], dtype="float32")
    else:
        clean, sr = speech, 16000
    clean_score = M.dnsmos(clean, sr)
    noisy_score = M.dnsmos(_noisy(clean, 0.0), sr)
    assert clean_score["dnsmos_ovrl"] > noisy_score["dnsmos_ovrl"] + 0.3
    assert clean_score["dnsmos_bak"] > noisy_score["dnsmos_bak"]
    assert all(1.0 <= v <= 5.0 for v in clean_score.values())


def test_dnsmos_scores_a_signal_seen_before_without_running_the_model_again(monkeypatch):
    """A campaign scored once per denoiser sends the same raw recordings every time: one model call each."""
    calls = []

    def fake_model(x, sr):
        calls.append(x.size)
        return {"dnsmos_ovrl": float(x.sum()), "dnsmos_sig": 1.0, "dnsmos_bak": 1.0, "dnsmos_p808": 1.0}

    monkeypatch.setattr(M, "_DNSMOS", fake_model)
    monkeypatch.setattr(M, "_DNSMOS_SEEN", type(M._DNSMOS_SEEN)())
    x = np.linspace(-0.5, 0.5, 16000, dtype=np.float32)
    first = M.dnsmos(x, 16000)
    first["dnsmos_ovrl"] = 99.0  # a caller changing its dict does not change what is remembered
    again = M.dnsmos(x.astype(np.float64), 16000)
    assert len(calls) == 1 and again["dnsmos_ovrl"] == pytest.approx(float(x.sum()))
    y = x.copy()
    y[7] += 1e-3
    M.dnsmos(y, 16000)
    M.dnsmos(x, 8000)
    assert len(calls) == 3  # another signal, or the same samples at another rate, is scored
