import csv

import matplotlib.image as mpimg
import pytest

from denoiselab.cli.evaluate import run

from hydra_helpers import compose_train


@pytest.mark.parametrize("mode", ["paired", "mixed"])
def test_evaluate_writes_tables_and_plots(tiny_ckpt, corpus, tmp_path, mode):
    out = tmp_path / "eval"
    if mode == "paired":
        import numpy as np
        import soundfile as sf

        (tmp_path / "noisy").mkdir()
        (tmp_path / "clean").mkdir()
        rng = np.random.default_rng(0)
        for p in sorted(corpus["val_clean"].glob("*.wav")):
            c, sr = sf.read(p, dtype="float32")
            sf.write(tmp_path / "clean" / p.name, c, sr)
            sf.write(tmp_path / "noisy" / p.name, c + 0.05 * rng.standard_normal(c.size).astype("float32"), sr)
        data = [f"data.noisy={tmp_path / 'noisy'}", f"data.clean={tmp_path / 'clean'}"]
    else:
        data = [f"data.clean={corpus['val_clean']}", f"data.noise={corpus['val_noise']}", "data.snrs=[0,10]"]
    cfg = compose_train([f"ckpt=[{tiny_ckpt}]", *data, "num_workers=0",
                         "metrics=[pesq_wb,estoi,si_sdr,dnsmos_ovrl]"], out, config_name="evaluate")
    run(cfg)
    summary = list(csv.DictReader(open(out / "summary.csv")))
    systems = [r["system"] for r in summary]
    assert systems[:3] == ["noisy", "specsub", "wiener"] and len(systems) == 4
    assert {"system", "pesq_wb", "estoi", "si_sdr", "dnsmos_ovrl"} <= set(summary[0])
    per_file = list(csv.DictReader(open(out / "per_file.csv")))
    assert len(per_file) == 4 * (2 if mode == "paired" else 4)
    md = (out / "summary.md").read_text()
    assert "| system |" in md and "By input SNR" in md and "By noise type" in md
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 5
    for p in pngs:
        img = mpimg.imread(p)
        assert img.shape[0] > 200 and img.shape[1] > 300 and img.std() > 0.01
    assert (out / "examples").is_dir()


def test_saved_testset_and_processed_folders_score_other_tools_on_the_same_files(corpus, tmp_path):
    """One mixture per file (SNRs cycled), frozen to disk; a folder of 'another tool's' outputs
    (here: the clean references at 22.05 kHz, as FLAC) is scored next to the built-in systems."""
    import numpy as np
    import soundfile as sf

    from denoiselab.core import audio

    first = tmp_path / "first"
    cfg = compose_train([f"data.clean={corpus['val_clean']}", f"data.noise={corpus['val_noise']}",
                         "data.snrs=[0,10]", "data.every_snr=false", "save_testset=true", "baselines=[noisy]",
                         "num_workers=0", "metrics=[si_sdr,pesq_wb]", "plots=false", "examples=0"],
                        first, config_name="evaluate")
    run(cfg)
    n_clean = len(list(corpus["val_clean"].glob("*.wav")))
    noisy_files = sorted((first / "testset" / "noisy").glob("*.wav"))
    assert len(noisy_files) == n_clean  # one mixture per utterance
    assert {p.stem.split("_snr")[1].split("_")[0] for p in noisy_files} == {"0", "10"}
    other = tmp_path / "other_tool"
    other.mkdir()
    for p in sorted((first / "testset" / "clean").glob("*.wav")):
        x, sr = sf.read(p, dtype="float32")
        sf.write(other / (p.stem + ".flac"), audio.resample(x, sr, 22050), 22050)
    second = tmp_path / "second"
    cfg = compose_train([f"data.noisy={first / 'testset' / 'noisy'}", f"data.clean={first / 'testset' / 'clean'}",
                         f"+processed.oracle={other}", "baselines=[noisy]", "num_workers=0",
                         "metrics=[si_sdr,pesq_wb]", "plots=false", "examples=0"], second, config_name="evaluate")
    run(cfg)
    by_system = {r["system"]: r for r in csv.DictReader(open(second / "summary.csv"))}
    assert set(by_system) == {"noisy", "oracle"}
    assert float(by_system["oracle"]["si_sdr"]) > 30 and float(by_system["oracle"]["pesq_wb"]) > 4.3
    first_noisy = {r["system"]: r for r in csv.DictReader(open(first / "summary.csv"))}["noisy"]
    np.testing.assert_allclose(float(by_system["noisy"]["si_sdr"]), float(first_noisy["si_sdr"]), atol=1e-3)
    next(other.glob("*.flac")).unlink()
    with pytest.raises(FileNotFoundError, match="has no output for test file"):
        run(compose_train([f"data.noisy={first / 'testset' / 'noisy'}", f"data.clean={first / 'testset' / 'clean'}",
                           f"+processed.oracle={other}", "num_workers=0", "metrics=[si_sdr]"],
                          tmp_path / "third", config_name="evaluate"))


def test_a_noisy_file_offset_from_its_reference_is_said_and_aligned_on_request(tmp_path, caplog):
    """A recording's latency (here 20 ms) puts every sample-by-sample metric off: it is found and said;
    data.align=true scores the pair aligned; a noisy file of other speech is said not to correlate; pairs
    that line up (also one whose reference is at another rate) say nothing."""
    import numpy as np
    import soundfile as sf

    from denoiselab.evaluation.evaluate import paired_items
    from denoiselab.evaluation.metrics import si_sdr

    from conftest import speechlike

    rng = np.random.default_rng(5)
    (tmp_path / "noisy").mkdir()
    (tmp_path / "clean").mkdir()
    lag = 320  # 20 ms at 16 kHz
    for name in ("aligned", "late", "other", "narrow"):
        c = speechlike(2.0, 16000, rng)
        noisy = c + 0.05 * rng.standard_normal(c.size).astype(np.float32)
        if name == "late":
            noisy = np.concatenate([np.zeros(lag, np.float32), noisy])
        if name == "other":
            noisy = speechlike(2.0, 16000, rng) + 0.05 * rng.standard_normal(c.size).astype(np.float32)
        sf.write(tmp_path / "noisy" / f"{name}.wav", noisy, 16000)
        sf.write(tmp_path / "clean" / f"{name}.wav", c[::2] if name == "narrow" else c, 8000 if name == "narrow"
                 else 16000)

    items = {it.name: it for it in paired_items(tmp_path / "noisy", tmp_path / "clean")}
    assert "1 noisy file(s) are offset in time" in caplog.text and "late.wav lags it by +20.0 ms" in caplog.text
    assert "1 pair(s) show no clear correlation" in caplog.text and "other.wav" in caplog.text
    as_it_lies = si_sdr(items["late.wav"].clean, items["late.wav"].noisy)
    caplog.clear()
    with caplog.at_level("INFO"):
        items = {it.name: it for it in paired_items(tmp_path / "noisy", tmp_path / "clean", align=True)}
    assert "offset in time" not in caplog.text and "1 noisy file(s) shifted onto their clean reference" in caplog.text
    aligned = si_sdr(items["aligned.wav"].clean, items["aligned.wav"].noisy)
    late = si_sdr(items["late.wav"].clean, items["late.wav"].noisy)
    assert abs(late - aligned) < 1.0 and late > as_it_lies + 5  # scored as the pair that lines up
    assert items["late.wav"].noisy.shape == items["late.wav"].clean.shape == (32000,)


def test_paired_training_data_offset_in_time_is_warned_about_and_aligned_on_request(tmp_path, cache_dir, caplog):
    """Training on pairs learns noisy - clean as the noise: a latency makes that target wrong throughout."""
    import numpy as np
    import soundfile as sf

    from denoiselab.training.data.datamodule import PairedDataModule

    from conftest import write_pairs

    write_pairs(tmp_path, [f"p{i}.wav" for i in range(4)], 1.5, np.random.default_rng(3))

    def setup(align: bool = False) -> tuple[str, float]:
        """(what was logged, RMS of the noise target noisy - clean of p1)"""
        caplog.clear()
        with caplog.at_level("INFO"):
            dm = PairedDataModule(noisy=tmp_path / "noisy", clean=tmp_path / "clean", clip_seconds=1.0,
                                  val_fraction=0.25, cache_dir=str(cache_dir), align=align)
            dm.setup("fit")
        n, c = next(p for p in dm.train_set.pairs + dm.val_set.pairs if p[0].path.endswith("p1.wav"))
        k = min(len(n), len(c))
        return caplog.text, float(np.sqrt(np.mean((np.asarray(n.samples[:k]) - c.samples[:k]) ** 2)))

    said, rms = setup()
    assert "offset in time" not in said and rms < 0.06  # the written noise: 0.05 RMS white noise
    late, rate = sf.read(tmp_path / "noisy" / "p1.wav", dtype="float32")
    sf.write(tmp_path / "noisy" / "p1.wav", np.concatenate([np.zeros(160, np.float32), late]), rate)
    said, rms = setup()
    assert "pair(s) are offset in time" in said and "p1.wav lags its clean file by +10.0 ms" in said
    assert "data.align=true" in said and rms > 0.1  # speech leaks into the noise target
    said, rms = setup(align=True)
    assert "offset in time" not in said and "data.align: 1 of" in said and "+10.0 ms" in said
    assert rms < 0.06


def test_more_names_than_checkpoints_is_refused(tiny_ckpt):
    """names label ckpt in order: a name left over means the labels are not what the user thinks."""
    from denoiselab.core.errors import UserError
    from denoiselab.evaluation.evaluate import build_systems

    with pytest.raises(UserError, match="names has 2 entries for 1 ckpt"):
        build_systems([str(tiny_ckpt)], ["mine", "theirs"], ["noisy"], "cpu", 1.0, None)
    systems = build_systems([str(tiny_ckpt), str(tiny_ckpt)], ["mine"], ["noisy"], "cpu", 1.0, None)
    assert list(systems)[:2] == ["noisy", "mine"] and len(systems) == 3


@pytest.mark.parametrize("override,said", [
    ("data.snrs=[]", "data.snrs is empty"),  # scored nothing and printed an empty table, exit 0
    ("data.max_files=0", "data.max_files must be >= 1"),  # was every file
    ("data.max_seconds=-1", "data.max_seconds must be > 0"),  # cut the last second off every file
    ("metrics=[]", "metrics is empty"),
    ("examples=-1", "examples must be >= 0"),
    ("num_workers=-1", "num_workers must be >= 0"),
    ("data.seed=-1", "data.seed must be >= 0"),
])
def test_settings_that_would_score_nothing_or_something_else_are_refused(corpus, tmp_path, override, said):
    from denoiselab.core.errors import UserError

    cfg = compose_train([f"data.clean={corpus['clean']}", f"data.noise={corpus['noise']}", override],
                        tmp_path / "ev", config_name="evaluate")
    with pytest.raises(UserError, match=said):
        run(cfg)
    assert not (tmp_path / "ev" / "summary.csv").exists()


def test_an_evaluation_into_a_folder_holding_another_says_what_it_replaces_and_what_stays(tmp_path, caplog):
    """hydra.run.dir given again: the tables were replaced silently and an earlier testset/ stayed beside them."""
    from denoiselab.cli.evaluate import say_earlier_evaluation

    with caplog.at_level("WARNING"):
        say_earlier_evaluation(tmp_path, save_testset=False, examples=0)
    assert not caplog.text  # a fresh folder
    (tmp_path / "summary.csv").write_text("system\n")
    (tmp_path / "testset").mkdir()
    (tmp_path / "examples").mkdir()
    with caplog.at_level("WARNING"):
        say_earlier_evaluation(tmp_path, save_testset=True, examples=0)
    assert "holds an earlier evaluation" in caplog.text and "; examples/ there stay from the earlier run" in caplog.text
