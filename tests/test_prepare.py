import csv

import numpy as np
import pytest
import soundfile as sf

from denoiselab.cli.prepare import main
from denoiselab.training.data.datamodule import MixtureDataModule
from denoiselab.training.prepare import clip_starts, prepare

from conftest import noise_signal, speechlike


@pytest.fixture()
def long_sources(tmp_path):
    rng = np.random.default_rng(0)
    c, n = tmp_path / "src_clean", tmp_path / "src_noise"
    c.mkdir()
    n.mkdir()
    sf.write(c / "a44k.flac", np.stack([speechlike(12.0, 44100, rng)] * 2, 1), 44100)  # stereo 44.1 kHz
    sf.write(c / "b48k.wav", speechlike(11.0, 48000, rng), 48000)
    sf.write(c / "c8k.wav", speechlike(10.5, 8000, rng), 8000)
    sf.write(c / "short.wav", speechlike(2.0, 16000, rng), 16000)
    quiet = speechlike(10.0, 16000, rng)
    quiet[: 5 * 16000] = 0.0  # first clip silent
    sf.write(c / "quiet.wav", quiet, 16000)
    loud = np.clip(speechlike(5.0, 16000, rng) * 20, -1, 1)  # clipped
    sf.write(c / "loud.wav", loud, 16000)
    sf.write(n / "white.wav", noise_signal("white", 10.0, 16000, rng), 16000)
    sf.write(n / "hum.wav", noise_signal("hum", 6.0, 16000, rng), 16000)
    return c, n


def test_clip_counts_lengths_and_overlap():
    assert clip_starts(80000 * 2 + 100, 80000, 80000) == [0, 80000]
    assert clip_starts(80000 * 2, 80000, 40000) == [0, 40000, 80000]
    assert clip_starts(79999, 80000, 80000) == []


def test_prepare_resamples_drops_bad_clips_writes_manifest_and_is_idempotent(long_sources, tmp_path, capsys):
    c, n = long_sources
    out = tmp_path / "prepared"
    stats = prepare(c, n, out, val_fraction=0.0)
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    clean = {r["path"]: r for r in rows if r["kind"] == "clean"}
    assert {r["source"].split("/")[-1] for r in clean.values()} == {"a44k.flac", "b48k.wav", "c8k.wav", "quiet.wav"}
    per_source = {}
    for r in clean.values():
        per_source[r["source"].split("/")[-1]] = per_source.get(r["source"].split("/")[-1], 0) + 1
    assert per_source == {"a44k.flac": 2, "b48k.wav": 2, "c8k.wav": 2, "quiet.wav": 1}
    for r in rows:
        info = sf.info(out / r["path"])
        assert info.samplerate == 16000 and info.channels == 1 and info.frames == 80000
        assert set(r) == {"kind", "path", "duration", "rate", "source", "rms_db", "split"}
    assert stats["silent clip"] == 1 and stats["clipped clip"] == 1 and stats["too short"] == 1
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    again = prepare(c, n, out, val_fraction=0.0)
    assert again["written"] == 0 and again["existing (kept)"] == stats["written"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == before


def test_the_datamodule_trains_from_the_manifest(long_sources, tmp_path, cache_dir):
    c, n = long_sources
    out = tmp_path / "prepared"
    assert main(["--clean", str(c), "--noise", str(n), "--out", str(out), "--val-fraction", "0.3",
                 "--premix-snrs", "0,5", "--premix-count", "4"]) == 0
    dm = MixtureDataModule(manifest=out / "manifest.csv", clip_seconds=1.0, cache_dir=str(cache_dir))
    dm.setup("fit")
    assert len(dm.train_set) > 0 and len(dm.val_set) > 0
    assert {t.path for t in dm.train_set.clean}.isdisjoint({t.path for t in dm.val_set.clean})
    assert len(list((out / "pairs" / "train" / "noisy").glob("*.wav"))) == 4


def test_manifest_paths_cannot_escape_the_root(tmp_path):
    m = tmp_path / "manifest.csv"
    m.write_text("kind,path,split\nclean,../../etc/passwd,train\n")
    with pytest.raises(ValueError, match="escapes the data root"):
        MixtureDataModule(manifest=m, root=tmp_path)


def test_a_kind_left_without_clips_is_refused_where_it_happens(long_sources, tmp_path):
    """Every clean file shorter than a clip: prepare stops naming the folder and the reasons instead of writing
    a manifest without speech, and a manifest without training noise is refused by name at training."""
    from denoiselab.core.errors import UserError

    c, n = long_sources
    with pytest.raises(UserError, match=r"no clean clips from the 6 file\(s\) in .*src_clean \(6 too short; "
                                        r"clips are 20 s\); lower --clip-seconds"):
        prepare(c, n, tmp_path / "out", clip_seconds=20.0)
    assert not (tmp_path / "out" / "manifest.csv").exists()
    m = tmp_path / "manifest.csv"
    m.write_text("kind,path,split\nclean,a.wav,train\nnoise,b.wav,val\n")
    with pytest.raises(UserError, match="lists no noise clips for training"):
        MixtureDataModule(manifest=m)


def test_an_output_folder_inside_the_speech_folder_is_not_read_back_and_overlaps_are_refused(long_sources, tmp_path):
    """Run twice with --out inside --clean, the second run cut its own clips again (60 clips became 120 on the
    demo corpus); --clean = --noise cut speech into noise clips; --out holding an input folder; a split or
    pre-mix setting that would be ignored or blamed on the wrong flag."""
    from denoiselab.core.errors import UserError

    c, n = long_sources
    first = prepare(c, n, c / "prepared")
    again = prepare(c, n, c / "prepared")
    assert again["clips"] == first["clips"] and again["written"] == 0
    with pytest.raises(UserError, match="--clean .* and --noise .* overlap"):
        prepare(c, c, tmp_path / "out")
    with pytest.raises(UserError, match="--clean .* and --noise .* overlap"):
        prepare(tmp_path, n, tmp_path / "out")  # the speech folder holds the noise folder
    with pytest.raises(UserError, match=r"--out \(.*\) is or holds the --noise folder"):
        prepare(c, n, n)
    with pytest.raises(UserError, match=r"--out \(.*\) is or holds the --clean folder"):
        prepare(c, n, tmp_path)
    with pytest.raises(UserError, match=r"--val-fraction must be in \[0, 1\), got 2"):
        prepare(c, n, tmp_path / "out", val_fraction=2.0)  # it said data.val_fraction
    for snrs, count in (([0.0, 5.0], 0), ([], 10), ([0.0], -1)):  # the first two wrote no pairs, silently
        with pytest.raises(UserError, match="--premix-snrs and --premix-count go together"):
            prepare(c, n, tmp_path / "out", premix_snrs=snrs, premix_count=count)
