import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from denoiselab.core.sources import AudioCache, load_tracks
from denoiselab.training.data.datamodule import MixtureDataModule, PairedDataModule

from conftest import speechlike, write_pairs


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path, caplog):
    d = tmp_path / "clean"
    d.mkdir()
    rng = np.random.default_rng(0)
    sf.write(d / "good.wav", speechlike(1.0, 16000, rng), 16000)
    (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage")
    sf.write(d / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    sf.write(d / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    sf.write(d / "short.wav", speechlike(0.05, 16000, rng), 16000)
    bad = speechlike(1.0, 16000, rng)
    bad[100] = np.nan
    sf.write(d / "nan.wav", bad, 16000, subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        tracks = load_tracks(d, AudioCache(None, 16000), min_samples=1600, kind="clean")
    assert [t.path.split("/")[-1] for t in tracks] == ["good.wav"]
    text = caplog.text
    for name, reason in [("corrupt.wav", "unreadable"), ("empty.wav", "empty"), ("silent.wav", "silent"),
                         ("short.wav", "too short"), ("nan.wav", "NaN")]:
        assert name in text and reason in text, (name, reason)
    assert text.count("corrupt.wav") == 1  # reported once


def test_a_bad_file_is_reported_once_per_run_although_the_data_module_reads_the_folder_three_times(
        tmp_path, caplog):
    """prepare_data (the cache), the training split and the validation split all read the folders."""
    rng = np.random.default_rng(1)
    for kind in ("clean", "noise"):
        (tmp_path / kind).mkdir()
        for i in range(3):
            sf.write(tmp_path / kind / f"{kind}{i}.wav", speechlike(1.5, 16000, rng), 16000)
    (tmp_path / "clean" / "broken_take.wav").write_bytes(b"RIFF\x00\x00garbage")
    dm = MixtureDataModule(clean=tmp_path / "clean", noise=tmp_path / "noise", clip_seconds=1.0,
                           cache_dir=str(tmp_path / "cache"), val_fraction=0.5)
    with caplog.at_level(logging.WARNING):
        dm.prepare_data()
        dm.setup()
    assert caplog.text.count("broken_take.wav") == 1


def test_empty_folder_gives_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"No usable clean recordings in .*empty: no audio files found"):
        load_tracks(tmp_path / "empty", AudioCache(None, 16000), kind="clean")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tracks(tmp_path / "missing", AudioCache(None, 16000), kind="noise")


def test_any_rate_and_channel_count_is_resampled_and_downmixed(tmp_path, cache_dir):
    rng = np.random.default_rng(1)
    x = speechlike(1.0, 44100, rng)
    sf.write(tmp_path / "stereo.flac", np.stack([x, x], 1), 44100)
    sf.write(tmp_path / "mono.ogg", speechlike(0.5, 8000, rng), 8000)
    tracks = load_tracks(tmp_path, AudioCache(cache_dir, 16000), kind="clean")
    lengths = {t.path.split("/")[-1]: len(t) for t in tracks}
    assert lengths["stereo.flac"] == 16000
    assert abs(lengths["mono.ogg"] - 8000) <= 1


def test_cache_decodes_once_and_is_reused(tmp_path, cache_dir, monkeypatch):
    sf.write(tmp_path / "a.wav", speechlike(1.0, 22050, np.random.default_rng(2)), 22050)
    cache = AudioCache(cache_dir, 16000)
    first = np.array(cache.load(tmp_path / "a.wav"))
    import denoiselab.core.audio as audio_mod

    def boom(*a, **k):
        raise AssertionError("decoded again")
    monkeypatch.setattr(audio_mod, "load_mono", boom)
    second = cache.load(tmp_path / "a.wav")
    assert isinstance(second, np.memmap)
    assert np.array_equal(first, np.asarray(second))


def test_list_files_and_split_by_file(corpus, tmp_path, cache_dir):
    lst = tmp_path / "clean.txt"
    lst.write_text("\n".join(str(p) for p in sorted(corpus["clean"].glob("*.wav"))))
    dm = MixtureDataModule(clean=str(lst), noise=corpus["noise"], clip_seconds=1.0, val_fraction=0.34,
                           cache_dir=str(cache_dir))
    dm.setup("fit")
    train_files = {t.path for t in dm.train_set.clean}
    val_files = {t.path for t in dm.val_set.clean}
    assert train_files and val_files and not train_files & val_files
    # a 2.5 s recording gives two 1 s clips per epoch
    assert len(dm.train_set) == 2 * len(train_files)


def test_a_list_with_entries_relative_to_another_folder_is_refused_with_the_reason(corpus, tmp_path, cache_dir,
                                                                                   monkeypatch):
    # the trap: `ls data/noise/*.wav > lists/noise.txt` writes paths relative to the current folder, but a
    # list's relative entries are read from the list's own folder
    monkeypatch.chdir(corpus["noise"].parent)
    (tmp_path / "lists").mkdir()
    lst = tmp_path / "lists" / "noise.txt"
    lst.write_text("\n".join(f"{corpus['noise'].name}/{p.name}" for p in sorted(corpus["noise"].glob("*.wav"))))
    dm = MixtureDataModule(clean=corpus["clean"], noise=str(lst), clip_seconds=1.0, cache_dir=str(cache_dir))
    with pytest.raises(FileNotFoundError, match=r"entries of the list .*noise\.txt do not exist.*"
                                                r"exists relative to the current folder"):
        dm.setup("fit")
    # the same list with absolute paths works
    lst.write_text("\n".join(str(p) for p in sorted(corpus["noise"].glob("*.wav"))))
    dm.setup("fit")
    assert dm.train_set.noise


def test_paired_mode(tmp_path, cache_dir):
    c = write_pairs(tmp_path, [f"p{i}.wav" for i in range(4)], 1.5, np.random.default_rng(3))
    sf.write(tmp_path / "noisy" / "orphan.wav", c, 16000)
    dm = PairedDataModule(noisy=tmp_path / "noisy", clean=tmp_path / "clean", clip_seconds=1.0, batch_size=2,
                          val_fraction=0.25, cache_dir=str(cache_dir))
    dm.setup("fit")
    assert len(dm.train_set) == 3 and len(dm.val_set) == 1
    batch = next(iter(dm.train_dataloader()))
    assert batch["noisy"].shape == (2, 16000)
    assert torch.allclose(batch["noisy"] - batch["clean"], batch["noise"])


@pytest.mark.parametrize("kwargs,match", [({"sample_rate": 0}, "sample_rate"), ({"clip_seconds": -1}, "clip_seconds"),
                                          ({"short": "trim"}, "short"), ({"batch_size": 0}, "batch_size"),
                                          ({"num_workers": -1}, "num_workers"),
                                          ({"num_workers": "many"}, "num_workers")])
def test_bad_data_settings_name_the_key(corpus, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MixtureDataModule(clean=corpus["clean"], noise=corpus["noise"], **kwargs)


@pytest.mark.parametrize("device,expected", [(None, 0), ("cpu", 0), ("cuda", 2)])
def test_auto_workers_leave_a_cpu_step_its_cores_and_prepare_batches_beside_an_accelerator(corpus, device, expected):
    """data.num_workers=auto (experiment=finetune): the loaders get no worker processes when the step runs on the
    CPU (or no trainer is attached), 2 when it runs on a GPU; a number is passed through as given."""
    from types import SimpleNamespace

    dm = MixtureDataModule(clean=corpus["clean"], noise=corpus["noise"], clip_seconds=1.0, num_workers="auto")
    dm.setup("fit")
    if device is not None:
        dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)), global_rank=0,
                                     world_size=1, training=False)
    assert dm.train_dataloader().num_workers == expected
    assert dm.val_dataloader().num_workers == expected
    fixed = MixtureDataModule(clean=corpus["clean"], noise=corpus["noise"], clip_seconds=1.0, num_workers=1)
    fixed.setup("fit")
    fixed.trainer = dm.trainer
    assert fixed.train_dataloader().num_workers == 1
