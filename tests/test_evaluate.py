import csv

import matplotlib.image as mpimg
import pytest

from denoiselab.evaluate import run

from hydra_helpers import compose_train


@pytest.mark.parametrize("mode", ["paired", "mixed"])
def test_evaluate_writes_tables_and_plots(tiny_ckpt, corpus, tmp_path, mode):
    out = tmp_path / "eval"
    if mode == "paired":
        import numpy as np
        import soundfile as sf

        (tmp_path / "noisy").mkdir(); (tmp_path / "clean").mkdir()
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
