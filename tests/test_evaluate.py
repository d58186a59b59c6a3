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
