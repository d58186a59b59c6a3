"""Quality metrics, one place, pinned conventions.

- PESQ: ITU-T P.862.2 wide band at 16 kHz (``pesq_wb``) and P.862 narrow band at 8 kHz
  (``pesq_nb``) through the ``pesq`` package, reference first. Other rates are resampled
  (torchaudio) and the original rate is recorded in ``resampled_from``. A file PESQ cannot
  score (no utterance, too short) gives NaN and a logged reason, never an exception.
- STOI (classic, ``stoi``) and extended STOI (``estoi``) through ``pystoi``.
- SI-SDR (zero-mean), SNR and segmental SNR (30 ms frames, clamped to [-10, 35] dB).
- DNSMOS P.835 (SIG/BAK/OVRL) and P.808: the ONNX models that ship inside ``speechmos``,
  run with onnxruntime; features computed with torchaudio (no download, no librosa).
Scores of many files run in worker processes (``num_workers``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)

INTRUSIVE = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "snr", "seg_snr")
DNSMOS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
ALL_METRICS = INTRUSIVE + DNSMOS
DEFAULT_METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "snr", "seg_snr")
#: Direction of "better" (all metrics here: higher is better).
HIGHER_IS_BETTER = {m: True for m in ALL_METRICS}


def _resample(x: np.ndarray, sr: int, new_sr: int) -> np.ndarray:
    from denoiselab.core.audio import resample

    return np.asarray(resample(np.asarray(x, dtype=np.float32), sr, new_sr), dtype=np.float32)


def _align(ref: np.ndarray, deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(ref.shape[-1], deg.shape[-1])
    return np.asarray(ref[..., :n], dtype=np.float64), np.asarray(deg[..., :n], dtype=np.float64)


# ---------------------------------------------------------------------- intrusive metrics
def pesq(ref: np.ndarray, deg: np.ndarray, sr: int, mode: str = "wb") -> float:
    """PESQ (P.862.2 'wb' at 16 kHz, P.862 'nb' at 8 kHz); NaN with a logged reason on failure."""
    from pesq import pesq as _pesq

    target = 16000 if mode == "wb" else 8000
    if sr != target:
        ref, deg = _resample(ref, sr, target), _resample(deg, sr, target)
    ref, deg = _align(ref, deg)
    try:
        return float(_pesq(target, ref.astype(np.float32), deg.astype(np.float32), mode))
    except Exception as exc:  # NoUtterancesError, BufferTooShortError, ...
        log.warning("PESQ-%s cannot score this file (%s: %s); recorded as NaN", mode.upper(),
                    type(exc).__name__, str(exc)[:120])
        return math.nan


def stoi(ref: np.ndarray, deg: np.ndarray, sr: int, extended: bool = False) -> float:
    from pystoi import stoi as _stoi

    ref, deg = _align(ref, deg)
    try:
        value = float(_stoi(ref, deg, sr, extended=extended))
    except Exception as exc:
        log.warning("STOI cannot score this file (%s); recorded as NaN", exc)
        return math.nan
    return value


def si_sdr(ref: np.ndarray, deg: np.ndarray, eps: float = 1e-12) -> float:
    ref, deg = _align(ref, deg)
    ref, deg = ref - ref.mean(), deg - deg.mean()
    alpha = np.dot(deg, ref) / (np.dot(ref, ref) + eps)
    target = alpha * ref
    return float(10 * np.log10((np.dot(target, target) + eps) / (np.dot(deg - target, deg - target) + eps)))


def snr(ref: np.ndarray, deg: np.ndarray, eps: float = 1e-12) -> float:
    ref, deg = _align(ref, deg)
    return float(10 * np.log10((np.dot(ref, ref) + eps) / (np.dot(ref - deg, ref - deg) + eps)))


def seg_snr(ref: np.ndarray, deg: np.ndarray, sr: int, frame_ms: float = 30.0, lo: float = -10.0,
            hi: float = 35.0) -> float:
    ref, deg = _align(ref, deg)
    n = max(1, int(sr * frame_ms / 1000))
    frames = ref.shape[0] // n
    if frames == 0:
        return snr(ref, deg)
    r = ref[: frames * n].reshape(frames, n)
    e = (ref - deg)[: frames * n].reshape(frames, n)
    err = (e ** 2).sum(1)
    with np.errstate(divide="ignore"):
        seg = np.where(err <= 1e-20, hi, 10 * np.log10((r ** 2).sum(1) / np.maximum(err, 1e-20) + 1e-20))
    return float(np.clip(seg, lo, hi).mean())


# ---------------------------------------------------------------------- DNSMOS
class DNSMOSModel:
    """DNSMOS P.835 + P.808 with the ONNX files shipped in ``speechmos`` (needs the dnsmos extra)."""

    SR = 16000
    INPUT_SECONDS = 9.01
    _POLY = {"sig": (-0.08397278, 1.22083953, 0.0052439), "bak": (-0.13166888, 1.60915514, -0.39604546),
             "ovrl": (-0.06766283, 1.11546468, 0.04602535)}

    def __init__(self) -> None:
        try:
            import onnxruntime as ort
            import speechmos
        except ImportError as exc:
            raise ImportError("DNSMOS needs the optional extra: pip install 'denoiselab[dnsmos]' "
                              f"(speechmos + onnxruntime); missing {exc.name}") from None
        models = Path(speechmos.__file__).parent / "dnsmos_models"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.p835 = ort.InferenceSession(str(models / "sig_bak_ovr.onnx"), opts, providers=["CPUExecutionProvider"])
        self.p808 = ort.InferenceSession(str(models / "model_v8.onnx"), opts, providers=["CPUExecutionProvider"])
        import warnings

        import torchaudio

        warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate=self.SR, n_fft=321, hop_length=160, n_mels=120,
                                                        norm="slaney", mel_scale="slaney", pad_mode="constant")

    def _melspec_db(self, seg: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            spec = self.mel(torch.from_numpy(seg.astype(np.float32))).numpy()
        db = 10 * np.log10(np.maximum(spec, 1e-10)) - 10 * np.log10(max(float(spec.max()), 1e-10))
        db = np.maximum(db, db.max() - 80.0)  # librosa.power_to_db(ref=np.max, top_db=80)
        return ((db + 40) / 40).T.astype(np.float32)

    def __call__(self, wave: np.ndarray, sr: int) -> dict[str, float]:
        x = np.asarray(wave, dtype=np.float32)
        if sr != self.SR:
            x = _resample(x, sr, self.SR)
        peak = float(np.abs(x).max()) if x.size else 0.0
        if peak > 1.0:
            x = x / peak  # DNSMOS expects [-1, 1]
        need = int(self.INPUT_SECONDS * self.SR)
        if x.size == 0:
            return {m: math.nan for m in DNSMOS}
        while x.size < need:
            x = np.concatenate([x, x])
        hops = int(np.floor(x.size / self.SR) - self.INPUT_SECONDS) + 1
        rows = []
        for i in range(max(1, hops)):
            seg = x[i * self.SR: i * self.SR + need]
            if seg.size < need:
                continue
            sig, bak, ovr = self.p835.run(None, {"input_1": seg[None]})[0][0]
            p808 = self.p808.run(None, {"input_1": self._melspec_db(seg[:-160])[None]})[0][0][0]
            rows.append((np.polyval(self._POLY["sig"], sig), np.polyval(self._POLY["bak"], bak),
                         np.polyval(self._POLY["ovrl"], ovr), p808))
        s, b, o, p = np.mean(np.array(rows, dtype=np.float64), 0)
        return {"dnsmos_sig": float(s), "dnsmos_bak": float(b), "dnsmos_ovrl": float(o), "dnsmos_p808": float(p)}


_DNSMOS: DNSMOSModel | None = None
#: DNSMOS of signals already scored, by content: a campaign scored once per denoiser sends every raw
#: recording again (0.3-0.8 s a call on one core); bounded, oldest dropped first.
_DNSMOS_SEEN: OrderedDict[bytes, dict[str, float]] = OrderedDict()
_DNSMOS_SEEN_MAX = 4096


def dnsmos(wave: np.ndarray, sr: int) -> dict[str, float]:
    global _DNSMOS
    x = np.ascontiguousarray(wave, dtype=np.float32)
    key = hashlib.sha1(x.tobytes()).digest() + sr.to_bytes(4, "little")
    if key in _DNSMOS_SEEN:
        _DNSMOS_SEEN.move_to_end(key)
        return dict(_DNSMOS_SEEN[key])
    if _DNSMOS is None:
        _DNSMOS = DNSMOSModel()
    out = _DNSMOS(x, sr)
    _DNSMOS_SEEN[key] = dict(out)
    while len(_DNSMOS_SEEN) > _DNSMOS_SEEN_MAX:
        _DNSMOS_SEEN.popitem(last=False)
    return out


def dnsmos_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
        import speechmos  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------- one file, many files
def score(deg: np.ndarray, sr: int, ref: np.ndarray | None = None,
          metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float | str]:
    """Every requested metric for one (mono) signal; intrusive ones need ``ref``."""
    unknown = set(metrics) - set(ALL_METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; allowed: {', '.join(ALL_METRICS)}")
    out: dict[str, float | str] = {}
    deg = np.asarray(deg, dtype=np.float32)
    for m in metrics:
        if m in INTRUSIVE and ref is None:
            out[m] = math.nan
            continue
        if m == "pesq_wb":
            out[m] = pesq(ref, deg, sr, "wb")
        elif m == "pesq_nb":
            out[m] = pesq(ref, deg, sr, "nb")
        elif m == "stoi":
            out[m] = stoi(ref, deg, sr)
        elif m == "estoi":
            out[m] = stoi(ref, deg, sr, extended=True)
        elif m == "si_sdr":
            out[m] = si_sdr(ref, deg)
        elif m == "snr":
            out[m] = snr(ref, deg)
        elif m == "seg_snr":
            out[m] = seg_snr(ref, deg, sr)
    if any(m in DNSMOS for m in metrics):
        values = dnsmos(deg, sr)
        out.update({m: values[m] for m in metrics if m in DNSMOS})
    if any(m.startswith("pesq") for m in metrics):
        out["pesq_resampled_from"] = "" if sr in (16000, 8000) else str(sr)
    return out


def _score_job(args: tuple) -> dict:
    deg, sr, ref, metrics = args
    return score(deg, sr, ref, metrics)


def score_many(items: Iterable[tuple[np.ndarray, int, np.ndarray | None]], metrics: Sequence[str] = DEFAULT_METRICS,
               num_workers: int = 0, progress: str | None = None) -> list[dict]:
    """Score (deg, sr, ref) triples, in ``num_workers`` processes when > 0 (order preserved)."""
    jobs = [(d, sr, r, tuple(metrics)) for d, sr, r in items]
    if num_workers and num_workers > 0 and len(jobs) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # no fork after torch threads
        with ProcessPoolExecutor(max_workers=min(num_workers, len(jobs)), mp_context=ctx,
                                 initializer=_quiet_worker) as pool:
            return list(_progress(pool.map(_score_job, jobs, chunksize=1), len(jobs), progress))
    return list(_progress(map(_score_job, jobs), len(jobs), progress))


def _quiet_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _progress(it, total: int, description: str | None):
    from denoiselab.core.progress import track

    return track(it, description or "", "files", total=total, enabled=bool(description))
