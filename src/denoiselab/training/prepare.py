"""Cut long clean and noise recordings into fixed-length clips + a manifest (the library behind
``denoiselab-prepare``).

The reference method's first two steps, done once and frozen on disk: resample + downmix, cut
into clips (optionally overlapping), drop silent or clipped clips, split train/val by source
file, and write ``manifest.csv`` (kind, path, duration, rate, source, rms_db, split) that
``data.manifest=OUT/manifest.csv`` trains from instead of scanning folders. Optionally writes
pre-mixed noisy/clean pairs at fixed SNRs (a frozen paired data set). Re-running skips clips that
exist and reports what it skipped and why.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from denoiselab.core import audio
from denoiselab.core.errors import UserError
from denoiselab.core.files import speech_in_noise
from denoiselab.core.mixing import mix_at_snr
from denoiselab.core.progress import track
from denoiselab.core.sources import split_by_file
from denoiselab.evaluation import report

log = logging.getLogger("denoiselab.training.prepare")

MANIFEST_COLUMNS = ("kind", "path", "duration", "rate", "source", "rms_db", "split")


#: How far (as a share of the audio) the validation split may drift from --val-fraction unwarned.
SHARE_TOLERANCE = 0.05


def validation_share(rows: list[dict], kind: str) -> float | None:
    """Share of the ``kind`` audio (by duration) in the validation split; None without audio."""
    total = sum(r["duration"] for r in rows if r["kind"] == kind)
    val = sum(r["duration"] for r in rows if r["kind"] == kind and r["split"] == "val")
    return val / total if total else None


def clip_starts(n: int, clip: int, hop: int, keep_tail: bool = False) -> list[int]:
    """Start samples of the clips of a recording of n samples (a short recording gives none)."""
    if n < clip:
        return []
    starts = list(range(0, n - clip + 1, hop))
    if keep_tail and starts[-1] + clip < n:
        starts.append(n - clip)
    return starts


def clip_reason(x: np.ndarray, silence_db: float, clip_level: float, max_clipped: float) -> str | None:
    """Why a clip is dropped (None: keep it)."""
    if audio.rms_db(x) < silence_db:
        return "silent"
    if np.mean(np.abs(x) >= clip_level) > max_clipped:
        return "clipped"
    return None


def prepare(clean: str | Path, noise: str | Path, out: str | Path, sample_rate: int = 16000,
            clip_seconds: float = 5.0, overlap: float = 0.0, silence_db: float = -50.0, clip_level: float = 0.999,
            max_clipped: float = 0.001, val_fraction: float = 0.1, seed: int = 0,
            premix_snrs: list[float] | None = None, premix_count: int = 0) -> dict:
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"--overlap must be in [0, 1), got {overlap}")
    if clip_seconds <= 0 or sample_rate <= 0:
        raise ValueError("--clip-seconds and --sample-rate must be positive")
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"--val-fraction must be in [0, 1), got {val_fraction:g}")
    if premix_count < 0 or bool(premix_snrs) != bool(premix_count):  # one without the other wrote no pairs
        raise UserError("--premix-snrs and --premix-count go together (SNRs in dB and a number of pairs >= 1)")
    _refuse_overlaps(Path(clean), Path(noise), Path(out))
    out = Path(out)
    clip = int(round(clip_seconds * sample_rate))
    hop = max(1, int(round(clip * (1 - overlap))))
    rows, stats = [], Counter({"written": 0, "existing (kept)": 0})
    skipped: list[tuple[str, str]] = []
    for kind, root in (("clean", Path(clean)), ("noise", Path(noise))):
        outputs = out.expanduser().resolve()
        files = [f for f in audio.find_audio(root) if not f.resolve().is_relative_to(outputs)]  # a rerun: not ours
        if not files:
            raise ValueError(f"no audio files found in {root}")
        train, val = split_by_file(files, val_fraction, seed + (kind == "noise"))
        split_of = {**{str(p): "train" for p in train}, **{str(p): "val" for p in val}}
        before = stats.copy()
        for src in track(files, f"preparing {kind}", "files"):
            try:
                wave = audio.load_mono(src, sample_rate)
            except audio.AudioError as err:
                skipped.append((str(src), err.reason))
                stats["unreadable"] += 1
                continue
            starts = clip_starts(wave.shape[0], clip, hop)
            if not starts:
                skipped.append((str(src), f"shorter than one clip ({wave.shape[0] / sample_rate:.2f} s)"))
                stats["too short"] += 1
                continue
            rel = src.relative_to(root).with_suffix("")
            split = split_of[str(src)]
            for k, s in enumerate(starts):
                x = wave[s:s + clip]
                reason = clip_reason(x, silence_db, clip_level, max_clipped)
                if reason:
                    stats[f"{reason} clip"] += 1
                    continue
                dst = out / kind / split / f"{rel}_{k:04d}.wav"
                if dst.exists() and dst.stat().st_size > 44:
                    stats["existing (kept)"] += 1
                else:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    tmp = dst.with_name(f".{dst.stem}.tmp.wav")  # same format, hidden, renamed when complete
                    audio.write(tmp, x, sample_rate, subtype="FLOAT")
                    tmp.replace(dst)
                    stats["written"] += 1
                rows.append({"kind": kind, "path": str(dst.relative_to(out)), "duration": clip / sample_rate,
                             "rate": sample_rate, "source": str(src), "rms_db": round(audio.rms_db(x), 2),
                             "split": split})
        if not any(r["kind"] == kind for r in rows):
            _say_skipped(skipped)
            lost = stats - before
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(lost.items()) if n) or "nothing usable"
            raise UserError(f"no {kind} clips from the {len(files)} file(s) in {root} ({why}; clips are "
                            f"{clip_seconds:g} s); lower --clip-seconds or check the files (reasons above)")
    report.write_csv(out / "manifest.csv", rows, MANIFEST_COLUMNS)
    for kind in ("clean", "noise"):
        share = validation_share(rows, kind)
        if share is not None and abs(share - val_fraction) > SHARE_TOLERANCE:
            log.warning("%s: validation holds %.0f %% of the audio, not the %.0f %% asked for (--val-fraction "
                        "splits by source file, and these files differ in length); with a few long recordings, "
                        "cut them first or give separate validation folders", kind, 100 * share, 100 * val_fraction)
            stats[f"{kind} validation share"] = f"{100 * share:.0f} %"
    if premix_snrs and premix_count:
        stats["premixed pairs"] = _premix(rows, out, sample_rate, premix_snrs, premix_count, seed)
    _say_skipped(skipped)
    return {"clips": len(rows), **stats}


def _refuse_overlaps(clean: Path, noise: Path, out: Path) -> None:
    """Speech folder = noise folder would make speech clips noise clips; an output folder holding an input
    folder would take the recordings for its own clips. (--out inside an input folder is fine: its clips
    are left out of the inputs.)"""
    if speech_in_noise([clean], [noise]) is not None:
        raise UserError(f"--clean ({clean}) and --noise ({noise}) overlap: the speech would be cut into noise clips "
                        "and a model trained on them would learn to remove speech; give the noise recordings' own "
                        "folder")
    for flag, root in (("--clean", clean), ("--noise", noise)):
        if root.expanduser().resolve().is_relative_to(out.expanduser().resolve()):
            raise UserError(f"--out ({out}) is or holds the {flag} folder {root}: give an output folder of its own")


def _say_skipped(skipped: list[tuple[str, str]]) -> None:
    for path, why in skipped:
        log.warning("skipped %s: %s", path, why)


def _premix(rows: list[dict], out: Path, sr: int, snrs: list[float], count: int, seed: int) -> int:
    """Frozen noisy/clean pairs per split: clean clip + random noise clip at a listed SNR."""
    written = 0
    for split in ("train", "val"):
        clean = [r for r in rows if r["kind"] == "clean" and r["split"] == split]
        noise = [r for r in rows if r["kind"] == "noise" and r["split"] == split]
        if not clean or not noise:
            continue
        n_pairs = count if split == "train" else max(1, count // 10)
        for i in range(n_pairs):
            rng = np.random.default_rng([seed, 7, i, split == "val"])
            c_row, n_row = clean[int(rng.integers(len(clean)))], noise[int(rng.integers(len(noise)))]
            snr = float(snrs[int(rng.integers(len(snrs)))])
            name = f"pair_{i:05d}_snr{snr:g}.wav"
            noisy_dst, clean_dst = out / "pairs" / split / "noisy" / name, out / "pairs" / split / "clean" / name
            if noisy_dst.exists() and clean_dst.exists():
                continue
            c, _ = audio.read(out / c_row["path"])
            n, _ = audio.read(out / n_row["path"])
            noisy, clean_x, _ = mix_at_snr(c[0], n[0], snr)
            for dst, x in ((clean_dst, clean_x), (noisy_dst, noisy)):
                dst.parent.mkdir(parents=True, exist_ok=True)
                audio.write(dst, x, sr, subtype="FLOAT")
            written += 1
    return written
