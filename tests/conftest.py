"""Shared fixtures: a small deterministic synthetic corpus, Hydra composition helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HYDRA_FULL_ERROR", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def speechlike(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Voiced 'syllables': harmonic tones with a wandering pitch and on/off envelopes."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum((0.6 / k) * np.sin(k * phase) for k in range(1, 12))
    env = np.zeros(n)
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.1, 0.3) * sr)
        env[pos:pos + length] = np.hanning(min(length, n - pos))
        pos += length + int(rng.uniform(0.02, 0.15) * sr)
    return (0.3 * x * env).astype(np.float32)


def write_pairs(root: Path, names: list[str], seconds: float, rng: np.random.Generator,
                clean_every: int = 1) -> np.ndarray:
    """root/noisy and root/clean with one speech-like clip + white noise per name (16 kHz noisy; the clean
    file keeps every ``clean_every``-th sample, i.e. it is written at 16000 / clean_every Hz). Returns the
    last clean clip."""
    (root / "noisy").mkdir()
    (root / "clean").mkdir()
    for name in names:
        c = speechlike(seconds, 16000, rng)
        sf.write(root / "clean" / name, c[::clean_every], 16000 // clean_every)
        sf.write(root / "noisy" / name, c + 0.05 * rng.standard_normal(c.size).astype(np.float32), 16000)
    return c


def noise_signal(kind: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * sr)
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind == "pink":
        spec = np.fft.rfft(rng.standard_normal(n))
        spec /= np.sqrt(np.arange(1, spec.size + 1))
        x = np.fft.irfft(spec, n)
    else:  # hum
        t = np.arange(n) / sr
        x = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 8)) + 0.1 * rng.standard_normal(n)
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


def make_corpus(root: Path, n_clean: int = 6, n_noise: int = 3, seconds: float = 2.5, sr: int = 16000,
                seed: int = 0) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    dirs = {k: root / k for k in ("clean", "noise", "val_clean", "val_noise")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    for i in range(n_clean):
        sf.write(dirs["clean"] / f"utt{i:02d}.wav", speechlike(seconds, sr, rng), sr)
    for i in range(2):
        sf.write(dirs["val_clean"] / f"vutt{i:02d}.wav", speechlike(seconds, sr, rng), sr)
    kinds = ["white", "pink", "hum"]
    for i in range(n_noise):
        sf.write(dirs["noise"] / f"{kinds[i % 3]}{i:02d}.wav", noise_signal(kinds[i % 3], seconds, sr, rng), sr)
    for i, k in enumerate(kinds[:2]):
        sf.write(dirs["val_noise"] / f"v{k}{i:02d}.wav", noise_signal(k, seconds, sr, rng), sr)
    return dirs


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture()
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def tiny_ckpt(corpus, tmp_path_factory) -> Path:
    """A few steps of a tiny U-Net: a real denoiselab-train checkpoint for inference tests."""
    from denoiselab.training.instantiate import close_loggers
    from denoiselab.training.train import run

    from hydra_helpers import TINY_NET, compose_train, corpus_overrides

    out = tmp_path_factory.mktemp("tiny_run")
    cfg = compose_train(["experiment=tiny", *TINY_NET["unet"], *corpus_overrides(corpus, out / "cache"),
                         "trainer.max_steps=6"], out)
    try:
        run(cfg)
    finally:
        close_loggers()
    return out / "checkpoints" / "last.ckpt"
