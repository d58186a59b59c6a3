"""The built-in demo corpus: synthetic speech (eSpeak NG) and procedurally generated, labelled noise.

Deterministic from a seed, generated locally, never downloaded. Layout under ``root``::

    {train,val,test}/clean/*.wav                 16 kHz speech, one sentence per file
    {train,val,test}/noise/<type>/*.wav          one folder per noise type (the label)
    test/noisy, test/clean_ref                   pre-mixed test pairs at fixed SNRs
    manifest.json                                settings + SHA-1 of every file

Splits share no sentence and no noise instance (each noise file is generated from its own seed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
from pathlib import Path

import numpy as np
import soundfile as sf

from denoiselab.core.mixing import mix_at_snr

log = logging.getLogger(__name__)

SR = 16000
NOISE_TYPES = ("white", "pink", "brown", "hum", "fan", "babble", "keyboard", "alarm", "rain")
VOICES = ("en-us", "en-us+f3", "en+m3", "en-gb-x-rp+f2", "en-gb-scotland+m1", "en-029+f4", "en-us+m4", "en+f1")
SIZES = {"tiny": {"train": 24, "val": 6, "test": 4, "noise": (2, 1, 1), "noise_s": 4.0},
         "demo": {"train": 240, "val": 24, "test": 12, "noise": (6, 2, 2), "noise_s": 12.0}}
TEST_SNRS = (0.0, 5.0, 10.0)

_SUBJ = ["the old farmer", "a young doctor", "my neighbour", "the tall engineer", "our teacher", "the small child",
         "a quiet student", "the pilot", "her brother", "the busy cook", "a famous singer", "the tired driver",
         "his sister", "the new manager", "a friendly nurse", "the careful painter"]
_VERB = ["carried", "painted", "found", "opened", "cleaned", "repaired", "described", "ordered", "watched",
         "bought", "moved", "checked", "measured", "borrowed", "returned", "tested"]
_OBJ = ["a wooden chair", "the green bottle", "seven heavy boxes", "an empty basket", "the broken window",
        "a bright lamp", "the blue bicycle", "two paper bags", "the kitchen table", "a silver watch",
        "the long ladder", "three red apples", "a narrow bridge", "the garden gate", "a thick book", "the warm coat"]
_TAIL = ["before breakfast", "near the station", "after the storm", "in the morning", "on a cold evening",
         "without a word", "during the meeting", "by the river", "at the market", "with great care",
         "under the bridge", "behind the house", "late at night", "next to the school", "for the first time",
         "in the rain"]


def sentences(seed: int) -> list[str]:
    """Distinct sentences (subject x verb x object = 4096, each with a seeded tail), in seeded order."""
    rng = np.random.default_rng(seed)
    combos = [(s, v, o) for s in _SUBJ for v in _VERB for o in _OBJ]
    return [f"{combos[i][0].capitalize()} {combos[i][1]} {combos[i][2]} {_TAIL[int(rng.integers(len(_TAIL)))]}."
            for i in rng.permutation(len(combos))]


def _synth_job(jobs: list[tuple[str, str, int, int, int]]) -> list[np.ndarray]:
    """Runs in a fresh process: eSpeak keeps state across utterances, so order + fresh start = reproducible."""
    from denoiselab.training.data.speech_synth import ESpeak

    e = ESpeak.get()
    out = []
    for text, voice, rate, pitch, seed in jobs:
        out.append(e.synth(text, voice, rate=rate, pitch=pitch, seed=seed))
    return out


def synthesize(jobs: list[tuple[str, str, int, int, int]]) -> tuple[list[np.ndarray], int]:
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        waves = pool.apply(_synth_job, (jobs,))
    return waves, 22050


# ---------------------------------------------------------------------- noise
def _colored(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=float)
    f[0] = 1.0
    return np.fft.irfft(spec / f ** (exponent / 2), n)


def _lowpass(x: np.ndarray, cutoff_hz: float, sr: int = SR) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1 / sr)
    spec *= 1 / (1 + (f / cutoff_hz) ** 4)
    return np.fft.irfft(spec, x.size)


def make_noise(kind: str, seconds: float, rng: np.random.Generator,
               babble_voices: list[np.ndarray] | None = None) -> np.ndarray:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind == "pink":
        x = _colored(n, rng, 1.0)
    elif kind == "brown":
        x = _colored(n, rng, 2.0)
    elif kind == "hum":
        f0 = rng.choice([50.0, 60.0]) * rng.uniform(0.995, 1.005)
        x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.28)) for k in range(1, 10))
        x = x + 0.02 * rng.standard_normal(n)
    elif kind == "fan":
        rot = rng.uniform(15, 40)
        x = _lowpass(rng.standard_normal(n), rng.uniform(400, 1500)) * (1 + 0.4 * np.sin(2 * np.pi * rot * t))
        x = x + 0.3 * np.sin(2 * np.pi * rot * rng.integers(3, 8) * t)
    elif kind == "babble":
        x = np.zeros(n)
        for v in babble_voices or []:
            start = int(rng.integers(0, max(1, n // 4)))
            seg = np.resize(v, n - start)
            x[start:] += seg * rng.uniform(0.5, 1.0)
        x = _lowpass(x, 3500) + 0.01 * rng.standard_normal(n)
    elif kind == "keyboard":
        x = 0.003 * rng.standard_normal(n)
        for pos in np.cumsum(rng.exponential(0.12 * SR, size=int(seconds * 12))).astype(int):
            if pos >= n - 400:
                break
            k = np.arange(400)
            click = np.sin(2 * np.pi * rng.uniform(1500, 4000) * k / SR) * np.exp(-k / rng.uniform(20, 60))
            x[pos:pos + 400] += click * rng.uniform(0.3, 1.0)
    elif kind == "alarm":
        f = rng.uniform(700, 2500)
        period = rng.uniform(0.3, 1.0)
        gate = (np.mod(t, period) < period * rng.uniform(0.3, 0.7)).astype(float)
        x = gate * (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 2 * f * t)) + 0.005 * rng.standard_normal(n)
    elif kind == "rain":
        x = 0.3 * _lowpass(rng.standard_normal(n), 6000)
        drops = rng.random(n) < rng.uniform(0.002, 0.01)
        x += np.convolve(drops * rng.standard_normal(n), np.exp(-np.arange(80) / 10.0), mode="same")
    else:
        raise ValueError(f"unknown noise type {kind!r}; allowed: {', '.join(NOISE_TYPES)}")
    x = np.asarray(x, dtype=np.float64)
    return (0.25 * x / max(np.abs(x).max(), 1e-9)).astype(np.float32)


# ---------------------------------------------------------------------- corpus
def generate(root: str | Path, size: str = "demo", seed: int = 0, force: bool = False) -> Path:
    """Create (or reuse, when the manifest matches) the demo corpus under ``root``."""
    from denoiselab.core.audio import resample

    if size not in SIZES:
        raise ValueError(f"size={size!r} is not allowed; choose one of {', '.join(SIZES)}")
    root = Path(root)
    manifest_path = root / "manifest.json"
    settings = {"size": size, "seed": int(seed), "version": 1}
    if manifest_path.exists() and not force:
        try:
            if json.loads(manifest_path.read_text()).get("settings") == settings:
                log.info("demo corpus already present at %s", root)
                return root
        except json.JSONDecodeError:
            pass
    cfg = SIZES[size]
    rng = np.random.default_rng(seed)
    pool = sentences(seed)
    counts = {"train": cfg["train"], "val": cfg["val"], "test": cfg["test"]}
    n_babble = 4 * sum(cfg["noise"])
    needed = sum(counts.values()) + n_babble
    if needed > len(pool):
        raise ValueError(f"the grammar has {len(pool)} sentences, {needed} needed")
    jobs, owners, start = [], [], 0
    for split, k in counts.items():
        for i in range(k):
            voice = VOICES[int(rng.integers(len(VOICES)))]
            jobs.append((pool[start + i], voice, int(rng.integers(130, 200)), int(rng.integers(30, 80)),
                         int(rng.integers(2**31))))
            owners.append((split, i))
        start += k
    babble_jobs = [(pool[start + i], VOICES[i % len(VOICES)], 170, 50, i) for i in range(n_babble)]
    waves, sr = synthesize(jobs + babble_jobs)
    waves = [resample(w, sr, SR) for w in waves]
    speech, babble = waves[: len(jobs)], waves[len(jobs):]
    files: dict[str, str] = {}

    def save(rel: str, x: np.ndarray) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.asarray(x, dtype=np.float32), SR, subtype="PCM_16")
        files[rel] = hashlib.sha1(path.read_bytes()).hexdigest()

    by_split: dict[str, list[np.ndarray]] = {s: [] for s in counts}
    for (split, i), w in zip(owners, speech):
        w = 0.3 * w / max(float(np.abs(w).max()), 1e-9)
        by_split[split].append(w)
        save(f"{split}/clean/{split}_{i:04d}.wav", w)
    b_iter = iter(babble)
    noise_by_split: dict[str, list[tuple[str, np.ndarray]]] = {s: [] for s in counts}
    for split, per_type in zip(counts, cfg["noise"]):
        for kind in NOISE_TYPES:
            for j in range(per_type):
                nrng = np.random.default_rng([seed, hash_str(split), hash_str(kind), j])
                voices = [next(b_iter) for _ in range(4)] if kind == "babble" else None
                x = make_noise(kind, cfg["noise_s"], nrng, voices)
                noise_by_split[split].append((kind, x))
                save(f"{split}/noise/{kind}/{kind}_{split}_{j:02d}.wav", x)
    # frozen test pairs: every test sentence at each SNR with a noise of a rotating type
    trng = np.random.default_rng([seed, 99])
    for i, c in enumerate(by_split["test"]):
        for k, snr in enumerate(TEST_SNRS):
            kind, nz = noise_by_split["test"][(i * len(TEST_SNRS) + k) % len(noise_by_split["test"])]
            off = int(trng.integers(0, max(1, nz.size - c.size)))
            n = np.resize(nz[off:], c.size) if nz.size - off < c.size else nz[off:off + c.size]
            noisy, clean_x, _ = mix_at_snr(np.asarray(c, dtype=np.float32), np.asarray(n, dtype=np.float32), snr)
            name = f"test_{i:04d}_snr{int(snr):02d}_{kind}.wav"
            save(f"test/noisy/{name}", noisy)
            save(f"test/clean_ref/{name}", clean_x)
    manifest_path.write_text(json.dumps({"settings": settings, "files": files}, indent=1, sort_keys=True))
    return root


def hash_str(s: str) -> int:
    return int(hashlib.sha1(s.encode()).hexdigest()[:8], 16)
