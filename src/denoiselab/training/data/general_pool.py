"""The builtin general-noise pool that fine-tuning mixes in when the user gives no folder of general noise.

Fine-tuning on one lab's noise forgets the rest unless a share of the mixtures carries other noise. The
pool is generated on the spot (nothing is downloaded or shipped): the demo corpus's stationary kinds (white,
pink, brown, hum, fan, keyboard, alarm, rain) plus everyday-like kinds they lack — transient bursts (barks,
knocks, sneezes), crackle (fire, frying, rain on a surface), gliding harmonic calls (crying, birds, sirens),
engines and rotors (a low fundamental with many harmonics, blade-rate modulation), surf and wind (slow swells
of low-passed noise), clatter (dishes, taps: decaying pings over running water) and babble made of the run's
own training speech. Each kind is drawn with random parameters from its own seed, so the pool is the same on
every run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from denoiselab.training.data.demo_corpus import NOISE_TYPES, SR, hash_str, make_noise

CLASSIC = tuple(k for k in NOISE_TYPES if k != "babble")  # babble comes from the run's speech here
EVERYDAY = ("bursts", "crackle", "calls", "engine", "surf", "clatter")


def _seed(*parts: str | int) -> list[int]:
    """The seed of one clip: the pool's name and the clip's kind and index, each hashed as the demo corpus does."""
    return [hash_str(str(p)) for p in ("general_pool", *parts)]


def _band(x: np.ndarray, centre_hz: float, octaves: float, sr: int = SR) -> np.ndarray:
    """x filtered by a Gaussian band on a log-frequency axis (``octaves`` wide at 1/e)."""
    spec = np.fft.rfft(x)
    f = np.maximum(np.fft.rfftfreq(x.size, 1 / sr), 1.0)
    spec *= np.exp(-(np.log2(f / centre_hz) / octaves) ** 2)
    return np.fft.irfft(spec, x.size)


def _smooth_walk(n: int, rng: np.random.Generator, knots_per_s: float, sr: int = SR) -> np.ndarray:
    """A slow random curve in [-1, 1]: ``knots_per_s`` random values a second, linearly interpolated."""
    k = max(2, int(n / sr * knots_per_s) + 2)
    return np.interp(np.arange(n), np.linspace(0, n - 1, k), rng.uniform(-1, 1, k))


def _decays(n: int, rng: np.random.Generator, rate_hz: float, make) -> np.ndarray:
    """Events at Poisson times: ``make(rng)`` returns each event's samples, added at its onset."""
    x = np.zeros(n)
    t = 0.0
    while True:
        t += rng.exponential(1.0 / rate_hz)
        start = int(t * SR)
        if start >= n:
            return x
        ev = make(rng)
        end = min(n, start + ev.size)
        x[start:end] += ev[: end - start]


def everyday_noise(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """One clip of an everyday-like kind (see the module docstring), peak 0.25, at 16 kHz."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    if kind == "bursts":
        def burst(r: np.random.Generator) -> np.ndarray:
            m = int(r.uniform(0.05, 0.6) * SR)
            env = np.minimum(np.arange(m) / (r.uniform(0.003, 0.02) * SR), 1.0) * \
                np.exp(-np.arange(m) / (r.uniform(0.03, 0.25) * SR))
            body = _band(r.standard_normal(m), float(np.exp(r.uniform(np.log(200), np.log(5000)))), r.uniform(0.3, 1.5))
            if r.random() < 0.5:  # a voiced burst: a bark, a shout
                f0 = r.uniform(250, 900)
                body = body + sum(np.sin(2 * np.pi * f0 * h * np.arange(m) / SR) / h for h in range(1, 6))
            return env * body / max(np.abs(body).max(), 1e-9) * r.uniform(0.3, 1.0)
        x = _decays(n, rng, rng.uniform(0.7, 3.0), burst) + 0.01 * make_noise("pink", seconds, rng)
    elif kind == "crackle":
        def click(r: np.random.Generator) -> np.ndarray:
            m = int(r.uniform(0.001, 0.012) * SR)
            return r.standard_normal(m) * np.exp(-np.arange(m) / (m / 4)) * min(r.pareto(1.5) + 0.1, 5.0)
        x = _decays(n, rng, rng.uniform(8, 60), click)
        x = x - _band(x, 150, 1.0)  # crackle is bright
        x = x + 0.05 * np.abs(x).max() * make_noise("pink", seconds, rng) * (1 + 0.5 * _smooth_walk(n, rng, 2))
    elif kind == "calls":
        f0 = rng.uniform(200, 900) * np.exp(0.25 * _smooth_walk(n, rng, 3) +
                                           0.02 * np.sin(2 * np.pi * rng.uniform(4, 8) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        tone = sum(rng.uniform(0.2, 1.0) / h * np.sin(h * phase) for h in range(1, int(rng.integers(3, 9))))
        gate = np.zeros(n)
        pos = 0
        while pos < n:  # calls of 0.3-1.5 s with gaps of 0.1-1 s
            length, gap = int(rng.uniform(0.3, 1.5) * SR), int(rng.uniform(0.1, 1.0) * SR)
            ramp = np.minimum(1.0, np.minimum(np.arange(length), np.arange(length)[::-1]) / (0.02 * SR))
            gate[pos:pos + length] = ramp[: max(0, min(length, n - pos))]
            pos += length + gap
        x = gate * tone + 0.01 * make_noise("pink", seconds, rng)
    elif kind == "engine":
        f0 = rng.uniform(20, 110) * (1 + 0.05 * _smooth_walk(n, rng, 0.5))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        envelope = np.exp(-np.arange(1, 41) / rng.uniform(4, 15))
        x = sum(envelope[h - 1] * rng.uniform(0.5, 1.0) * np.sin(h * phase + rng.uniform(0, 6.28))
                for h in range(1, 41))
        rumble = make_noise("brown", seconds, rng) + 0.3 * _band(rng.standard_normal(n), rng.uniform(300, 2000), 1.5)
        blade = 1 + rng.uniform(0.0, 0.8) * np.sin(2 * np.pi * rng.uniform(8, 25) * t)  # rotor / piston rate
        x = (x / max(np.abs(x).max(), 1e-9) + rng.uniform(0.3, 1.0) * rumble / max(np.abs(rumble).max(), 1e-9)) * blade
    elif kind == "surf":
        swell = np.clip(0.55 + 0.45 * _smooth_walk(n, rng, rng.uniform(0.2, 0.6)), 0.05, 1.0) ** 2
        x = swell * (make_noise("brown", seconds, rng) + rng.uniform(0.2, 1.0) *
                     _band(rng.standard_normal(n), rng.uniform(400, 3000), 2.0) / 4)
    elif kind == "clatter":
        def ping(r: np.random.Generator) -> np.ndarray:
            m = int(r.uniform(0.03, 0.3) * SR)
            k = np.arange(m)
            return sum(np.sin(2 * np.pi * r.uniform(1000, 7000) * k / SR) for _ in range(3)) * \
                np.exp(-k / (r.uniform(0.01, 0.08) * SR)) * r.uniform(0.2, 1.0)
        flutter = rng.standard_normal(n // 160 + 1).repeat(160)[:n].clip(-1.5, 1.5)  # 10 ms steps
        water = _band(rng.standard_normal(n), rng.uniform(1500, 5000), 1.5) * (1 + 0.6 * flutter)
        x = _decays(n, rng, rng.uniform(1, 6), ping) + rng.uniform(0.0, 0.3) * water / max(np.abs(water).max(), 1e-9)
    else:
        raise ValueError(f"unknown everyday noise kind {kind!r}; allowed: {', '.join(EVERYDAY)}")
    x = np.asarray(x, dtype=np.float64)
    return (0.25 * x / max(np.abs(x).max(), 1e-9)).astype(np.float32)


def babble(speech: Sequence[np.ndarray], seconds: float, rng: np.random.Generator, talkers: int,
           sr: int = SR) -> np.ndarray:
    """``talkers`` utterances of the run's speech at random offsets and levels, summed: a crowd."""
    n = int(seconds * sr)
    x = np.zeros(n)
    for i in rng.choice(len(speech), size=min(talkers, len(speech)), replace=False):
        s = np.asarray(speech[int(i)], dtype=np.float64)
        s = s / max(float(np.sqrt(np.mean(s ** 2))), 1e-9)
        start = int(rng.integers(0, max(1, s.size)))
        x += np.resize(np.roll(s, -start), n) * rng.uniform(0.5, 1.0)
    return (0.25 * x / max(np.abs(x).max(), 1e-9)).astype(np.float32)


POOLS = ("full", "classic")


def builtin_noise_pool(sample_rate: int = SR, seconds: float = 8.0, per_type: int = 4,
                       speech: Sequence[np.ndarray] = (), pool: str = "full") -> list[tuple[str, np.ndarray]]:
    """(kind, noise) clips at ``sample_rate``. ``full``: ``per_type`` of every classic and everyday kind,
    and babble of 3-8 talkers where ``speech`` (the run's training utterances, at ``sample_rate``) is
    given. ``classic``: the pool before the everyday kinds, exactly (two clips of each classic kind, drawn
    as then), which the device workflow was measured with."""
    from denoiselab.core.audio import resample

    if pool not in POOLS:
        raise ValueError(f"builtin pool {pool!r} is not one of {', '.join(POOLS)}")

    def at_rate(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(resample(x, SR, sample_rate), dtype=np.float32)

    if pool == "classic":
        seeds = [(kind, [hash_str("builtin"), hash_str(kind), j]) for kind in CLASSIC for j in range(2)]
        return [(kind, at_rate(make_noise(kind, seconds, np.random.default_rng(seed)))) for kind, seed in seeds]
    out: list[tuple[str, np.ndarray]] = []
    for kind in (*CLASSIC, *EVERYDAY):
        for j in range(per_type):
            rng = np.random.default_rng(_seed(kind, j))
            out.append((kind, at_rate(make_noise(kind, seconds, rng) if kind in CLASSIC
                                      else everyday_noise(kind, seconds, rng))))
    if len(speech) >= 3:
        for j in range(per_type):
            rng = np.random.default_rng(_seed("babble", j))
            out.append(("babble", babble(speech, seconds, rng, int(rng.integers(3, 9)), sample_rate)))
    return out
