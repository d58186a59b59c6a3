"""Opt-in (DENOISELAB_BROWSER_TESTS=1 and Chromium installed): the device report as a lab engineer sees
it, rendered by headless Chromium to a PNG (tests write it next to the report for a look)."""

import os
import shutil
import subprocess

import matplotlib.image as mpimg
import numpy as np
import pytest
import soundfile as sf

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.environ.get("DENOISELAB_BROWSER_TESTS") != "1" or not CHROMIUM,
                                 reason="opt-in: DENOISELAB_BROWSER_TESTS=1 and chromium on PATH")]


def test_device_report_renders_in_a_real_browser(tmp_path):
    from denoiselab.core.audio import resample
    from denoiselab.evaluation.baselines import wiener
    from denoiselab.evaluation.device import evaluate_devices
    from denoiselab.evaluation.device_sim import PROFILES, record
    from denoiselab.training.data.demo_corpus import sentences, synthesize

    waves, rate = synthesize([(t, "en-us", 160, 50, i) for i, t in enumerate(sentences(5)[:3])])
    root = tmp_path / "campaign"
    (root / "reference").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, w in enumerate(waves):
        x = resample(0.1 * w / np.abs(w).max(), rate, 16000).astype(np.float32)
        ref = np.concatenate([np.zeros(1600, np.float32), x, np.zeros(800, np.float32)])
        sf.write(root / "reference" / f"u{i}.wav", ref, 16000)
        noise = rng.standard_normal(ref.size).astype(np.float32) * 0.01
        for name in PROFILES:
            y, r = record(PROFILES[name], ref + noise, 16000, np.random.default_rng(i))
            (root / name).mkdir(exist_ok=True)
            sf.write(root / name / f"u{i}.wav", y, r)
    out = tmp_path / "report"
    evaluate_devices(root, out, denoise=wiener, dnsmos=False)
    png = out / "report_screenshot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'chrome'}", "--hide-scrollbars", "--window-size=1100,2400",
                    f"--screenshot={png}", (out / "report.html").as_uri()], check=True, timeout=120,
                   capture_output=True)
    img = mpimg.imread(png)
    assert img.shape[1] == 1100 and img.shape[0] == 2400 and img.std() > 0.05
    keep = os.environ.get("DENOISELAB_BROWSER_SHOT")
    if keep:
        shutil.copy2(png, keep)
