"""benchmarks/oracle_bands.py --template: the per-bin noise template that shapes a band gain's noise part
(oracle_template.md rests on it: a template that were 1 everywhere, or shaped the wrong bins, would make that
result meaningless)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from denoiselab.core.spectral import SpectralFrontEnd


def _oracle_bands():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "oracle_bands.py"
    spec = importlib.util.spec_from_file_location("oracle_bands", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_template_peaks_on_a_tone_bin_and_leaves_a_flat_band_gain_alone(tmp_path):
    ob = _oracle_bands()
    front = SpectralFrontEnd(hop_length=256)
    bands = SpectralFrontEnd(hop_length=256, bands="erb", n_bands=64)
    rate, rng = 16000, np.random.default_rng(0)
    tone_bin = 80  # 2.5 kHz: inside a band several bins wide
    t = np.arange(3 * rate) / rate
    noise = 0.01 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * tone_bin * rate / 512 * t)
    sf.write(tmp_path / "hum.flac", noise.astype(np.float32), rate)
    sf.write(tmp_path / "hum_stereo.wav", np.stack([noise, noise], 1).astype(np.float32), rate)
    (tmp_path / "notes.txt").write_text("not audio")

    template = ob.noise_template(tmp_path, front, bands)
    assert template.shape == (257,)
    assert template[tone_bin] > 1.5  # the tone's bin stands out of its band-smoothed level
    assert template[tone_bin + 4] < 0.7  # and its neighbours in the band are below it

    gain = torch.full((257, 5), 0.4)
    out = ob.shaped(gain, template)
    assert out[tone_bin].max() < 0.4 and out[tone_bin + 4].min() > 0.4  # harder on the peak, softer beside it
    assert torch.all((out >= 0) & (out <= 1))
    assert torch.allclose(ob.shaped(gain, torch.ones(257)), gain)
