"""Bad configurations and audio edge cases: each either handled (with checked output properties)
or refused with a clear message - never a deep traceback, never a silently wrong output."""

import os
import wave

import numpy as np
import pytest
import soundfile as sf

from denoiselab.cli.enhance import main as enhance_main
from denoiselab.training.train import run

from hydra_helpers import compose_train, corpus_overrides

BAD_CONFIGS = [
    (["data.clip_seconds=-1"], "data.clip_seconds must be > 0"),
    (["data.mix.snr_db=[20,-5]", "data.mix.mode=snr"], "data.mix.snr_db range is reversed"),
    (["data.sample_rate=0"], "data.sample_rate must be a positive integer"),
    (["data.mix.mode=loud"], "data.mix.mode='loud' is not allowed; choose one of gain, snr"),
    (["data.batch_size=0"], "data.batch_size must be >= 1"),
    (["data.clean=/no/such/folder"], "data.clean: no such file or folder: /no/such/folder"),
    (["data.val_noise=/no/such/noise"], "data.val_noise: no such file or folder"),
    (["model.frontend.window=kaiser"], "window='kaiser' is not allowed; choose one of hann, hamming"),
    (["model.head=magic"], "model.head='magic' is not allowed; choose one of mask, noise"),
    (["model.net.depth=0"], "unet needs depth >= 1"),
    (["model/scheduler=onecycle", "trainer.max_steps=-1"], "model/scheduler=onecycle spans trainer.max_steps"),
    (["model/scheduler=cosine_time", "trainer.max_time=null"], "model/scheduler=cosine_time decays over a time"),
    (["trainer.max_time=5min"], "trainer.max_time=5min: give DD:HH:MM:SS"),
]


@pytest.mark.parametrize("overrides,message", BAD_CONFIGS, ids=[o[0] for o, _ in BAD_CONFIGS])
def test_bad_config_fails_before_any_work_naming_the_key(corpus, cache_dir, tmp_path, overrides, message):
    cfg = compose_train(["experiment=tiny", *corpus_overrides(corpus, cache_dir), *overrides], tmp_path / "run")
    with pytest.raises(Exception) as info:
        run(cfg)
    assert message in str(info.value)
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing was trained


def test_the_speech_folder_given_as_noise_is_refused(corpus, cache_dir, tmp_path):
    """data.noise = data.clean (or a folder holding it) would teach the model to remove speech."""
    for noise in (corpus["clean"], corpus["clean"].parent):
        cfg = compose_train(["experiment=tiny", *corpus_overrides(corpus, cache_dir), f"data.noise={noise}"],
                            tmp_path / "run")
        with pytest.raises(Exception, match="overlap: the speech would be mixed in as noise"):
            run(cfg)


def _lying_header(path):
    x = (np.random.default_rng(0).standard_normal(16000) * 0.1 * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(x.tobytes())
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # the header still announces 16000 frames


def _write(path, kind):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(8000) * 0.1).astype(np.float32)
    if kind == "zero_length":
        sf.write(path, np.zeros(0, np.float32), 16000)
    elif kind == "single_sample":
        sf.write(path, x[:1], 16000)
    elif kind == "all_zeros":
        sf.write(path, np.zeros(8000, np.float32), 16000)
    elif kind == "nan":
        x[10] = np.nan
        sf.write(path, x, 16000, subtype="FLOAT")
    elif kind == "inf":
        x[10] = np.inf
        sf.write(path, x, 16000, subtype="FLOAT")
    elif kind == "clipped":
        sf.write(path, np.clip(x * 30, -1, 1), 16000)
    elif kind == "pcm_u8":
        sf.write(path, x, 16000, subtype="PCM_U8")
    elif kind == "pcm_24":
        sf.write(path, x, 16000, subtype="PCM_24")
    elif kind == "float":
        sf.write(path, x, 16000, subtype="FLOAT")
    elif kind == "rate_1k":
        sf.write(path, x[:1000], 1000)
    elif kind == "rate_192k":
        sf.write(path, (rng.standard_normal(192000) * 0.1).astype(np.float32), 192000)
    elif kind == "six_channels":
        sf.write(path, (rng.standard_normal((8000, 6)) * 0.1).astype(np.float32), 16000)
    elif kind == "lying_header":
        _lying_header(path)


# (kind, expected): "ok" = output with the input's rate/channels/length, or the error text
AUDIO_CASES = [("zero_length", "empty recording"), ("single_sample", "ok"), ("all_zeros", "ok"),
               ("nan", "contains NaN or Inf"), ("inf", "contains NaN or Inf"), ("clipped", "ok"),
               ("pcm_u8", "ok"), ("pcm_24", "ok"), ("float", "ok"), ("rate_1k", "ok"), ("rate_192k", "ok"),
               ("six_channels", "ok"), ("lying_header", "ok")]


@pytest.mark.parametrize("kind,expected", AUDIO_CASES, ids=[k for k, _ in AUDIO_CASES])
def test_audio_edge_cases_through_enhance(tiny_ckpt, tmp_path, caplog, kind, expected):
    src = tmp_path / f"{kind}.wav"
    _write(src, kind)
    out = tmp_path / "out"
    code = enhance_main([str(src), "--ckpt", str(tiny_ckpt), "--out", str(out), "--quiet"])
    dst = out / src.name
    if expected == "ok":
        assert code == 0, caplog.text
        a, b = sf.info(src), sf.info(dst)
        assert (a.samplerate, a.channels, a.frames, a.subtype) == (b.samplerate, b.channels, b.frames, b.subtype)
        y, _ = sf.read(dst, dtype="float32")
        assert np.isfinite(y).all()
        if kind == "all_zeros":
            assert np.abs(y).max() < 1e-6  # silence stays silence
    else:
        assert code == 1 and expected in caplog.text and kind in caplog.text
        assert not dst.exists() and not list(out.rglob("*.denoiselab-partial"))


def test_unwritable_or_full_output_dir_fails_before_training(corpus, cache_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cfg = compose_train(["experiment=tiny", *corpus_overrides(corpus, cache_dir)], blocker / "run")
    with pytest.raises(RuntimeError, match="is not writable"):
        run(cfg)
    import denoiselab.training.train as train_mod

    monkeypatch.setattr(train_mod, "_free_mb", lambda path: 12.0)
    cfg = compose_train(["experiment=tiny", *corpus_overrides(corpus, cache_dir)], tmp_path / "run")
    with pytest.raises(RuntimeError, match="has only 12 MB free"):
        run(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


class _Exploit:
    def __reduce__(self):

        return (os.system, ("touch /tmp/denoiselab_pwned_marker",))


def test_a_malicious_model_file_cannot_run_code(tmp_path):

    import torch

    from denoiselab.core.model_files import load_denoiser

    marker = "/tmp/denoiselab_pwned_marker"
    if os.path.exists(marker):
        os.unlink(marker)
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Exploit()}, evil)
    with pytest.raises(Exception, match="cannot be read"):
        load_denoiser(evil)
    assert not os.path.exists(marker)
