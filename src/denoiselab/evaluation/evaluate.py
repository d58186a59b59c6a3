"""Score checkpoints, classic baselines and other tools' outputs on one test set, side by side
(the library behind ``denoiselab-evaluate``).

Test set: paired noisy/clean folders (matching names, any rate), or clean + noise folders mixed
at the listed SNRs with a fixed seed (identical for every system and every run). Models are
loaded from their checkpoint alone. Writes per_file.csv, summary.csv, summary.md, plots (PNG)
and example wavs to the run dir, and prints the summary.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from denoiselab.core import audio
from denoiselab.core.errors import UserError
from denoiselab.core.files import safe_filename
from denoiselab.core.mixing import loop_crop, mix_at_snr, peak_normalize, snr_gain
from denoiselab.core.progress import track
from denoiselab.core.rooms import RoomAugment, reverberate
from denoiselab.core.sources import AudioCache, category, load_tracks, match_pairs
from denoiselab.evaluation import metrics as M
from denoiselab.evaluation import report
from denoiselab.evaluation.alignment import pair_offset, shift
from denoiselab.evaluation.baselines import get_baseline

log = logging.getLogger(__name__)

#: Columns always present in summary.csv (the interface other tools read).
SUMMARY_KEYS = ("pesq_wb", "estoi", "si_sdr", "dnsmos_ovrl")


@dataclass
class TestItem:
    name: str
    noisy: np.ndarray
    clean: np.ndarray
    rate: int
    snr_db: float
    noise_type: str
    clean_rate: int | None = None  # the reference's own rate when it differs (it is resampled to ``rate``)


# ---------------------------------------------------------------------- test sets
def paired_items(noisy_dir: str | Path, clean_dir: str | Path, max_files: int | None = None,
                 align: bool = False) -> list[TestItem]:
    """Noisy/clean pairs by matching names; noise type from the file name's category (see
    ``core.sources.category``); a clean reference at another rate than its noisy file is resampled,
    warned about once, and both rates are recorded. A noisy file offset in time from its reference (a
    recording's latency) is found by GCC-PHAT: said, since every metric compares sample by sample, or,
    with ``align``, shifted onto the reference."""
    items = []
    mismatched: list[tuple[str, int, int]] = []
    offsets: list[tuple[str, float]] = []  # (noisy file, ms it lags its reference)
    unrelated: list[str] = []
    for noisy_path, clean_path in match_pairs(noisy_dir, clean_dir)[: max_files or None]:
        try:
            n, rn = audio.read(noisy_path)
            c, rc = audio.read(clean_path)
        except audio.AudioError as err:
            log.warning("skipping pair: %s", err)
            continue
        n, c = audio.to_mono(n), audio.resample(audio.to_mono(c), rc, rn)
        lag, related = pair_offset(n, c, rn)
        if not related:
            unrelated.append(str(noisy_path))
        elif lag:
            offsets.append((str(noisy_path), 1000.0 * lag / rn))
            if align:
                n = shift(n, lag, n.shape[-1] - lag)  # advanced by the lag (a lead is padded at the start)
        k = min(n.shape[-1], c.shape[-1])
        n, c = n[:k], c[:k]
        if rc != rn:
            mismatched.append((str(noisy_path), rn, rc))
        items.append(TestItem(str(Path(noisy_path).relative_to(noisy_dir)), n, c, rn, M.snr(c, n),
                              category(noisy_path), rc if rc != rn else None))
    if not items:
        raise ValueError(f"no usable noisy/clean pairs in {noisy_dir} and {clean_dir}")
    if mismatched:
        path, rn, rc = mismatched[0]
        log.warning("%d clean reference(s) are at another rate than their noisy file (e.g. %s: noisy %d Hz, clean "
                    "%d Hz); they were resampled to the noisy rate, and both rates are in per_file.csv "
                    "(rate, clean_rate). A reference below the noisy file's bandwidth makes every score pessimistic.",
                    len(mismatched), path, rn, rc)
    _report_offsets(offsets, unrelated, align)
    return items


def _report_offsets(offsets: list[tuple[str, float]], unrelated: list[str], aligned: bool) -> None:
    """One line for the pairs offset in time (shifted, or scored as they lie), one for those that do not
    correlate at all."""
    if offsets:
        path, ms = max(offsets, key=lambda o: abs(o[1]))
        if aligned:
            log.info("data.align: %d noisy file(s) shifted onto their clean reference (largest offset %s: %+.1f ms)",
                     len(offsets), path, ms)
        else:
            log.warning("%d noisy file(s) are offset in time from their clean reference (e.g. %s lags it by %+.1f "
                        "ms): every metric compares the two sample by sample, so those scores are wrong. "
                        "data.align=true shifts each noisy file onto its reference", len(offsets), path, ms)
    if unrelated:
        log.warning("%d pair(s) show no clear correlation between the noisy file and its clean reference (e.g. %s): "
                    "is it a recording of that reference?", len(unrelated), unrelated[0])


def mixed_items(clean_dir: str | Path, noise_dir: str | Path, snrs: Sequence[float], seed: int,
                sample_rate: int = 16000, max_files: int | None = None,
                max_seconds: float | None = None, every_snr: bool = True,
                rooms: RoomAugment | None = None) -> list[TestItem]:
    """Every clean file at every SNR (or, with ``every_snr=False``, file i at SNR i mod len(snrs):
    one mixture per utterance, SNRs spread evenly), with a noise file/offset chosen by
    (seed, file, snr). With ``rooms``, speech and noise are reverberated in a room of that bank (the
    reference is the talker's early response, as in training); the SNR is measured at the microphone."""
    cache = AudioCache(None, sample_rate)
    clean = load_tracks(clean_dir, cache, kind="test clean")[: max_files or None]
    noise = load_tracks(noise_dir, cache, kind="test noise")
    items = []
    for i, c in enumerate(clean):
        x = np.asarray(c.samples, dtype=np.float32)
        if max_seconds:
            x = x[: int(max_seconds * sample_rate)]
        for k, snr in enumerate(snrs):
            if not every_snr and k != i % len(snrs):
                continue
            rng = np.random.default_rng([int(seed), i, k])
            nt = noise[int(rng.integers(len(noise)))]
            n = loop_crop(np.asarray(nt.samples), x.shape[0], rng)
            if rooms is not None:
                noisy, clean_x = _reverberant_mixture(x, n, snr, rooms, sample_rate, rng)
            else:
                noisy, clean_x, _ = mix_at_snr(x, n, snr)
            name = f"{Path(c.path).stem}_snr{snr:g}_{Path(nt.path).stem}"
            items.append(TestItem(name, noisy.astype(np.float32), clean_x.astype(np.float32), sample_rate,
                                  float(snr), nt.label))
    return items


def _reverberant_mixture(x: np.ndarray, n: np.ndarray, snr: float, rooms: RoomAugment, sample_rate: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    import torch

    room = torch.tensor([int(rng.integers(rooms.rooms)) if rng.uniform() < rooms.p else -1])
    heard, target, rev_noise = reverberate(torch.from_numpy(x)[None], torch.from_numpy(n)[None], room,
                                           rooms.bank(sample_rate))
    heard, target, rev_noise = heard[0], target[0], rev_noise[0]
    noisy = heard + rev_noise * snr_gain(heard, rev_noise, snr)
    noisy, target = peak_normalize(noisy, target)
    return noisy.numpy(), target.numpy()


def write_testset(items: Sequence[TestItem], out_dir: Path) -> Path:
    """Freeze the test mixtures as OUT/noisy/NAME.wav + OUT/clean/NAME.wav (float, the item's rate),
    so that other tools can process exactly the files denoiselab scores."""
    import soundfile as sf

    for it in items:
        for kind, x in (("noisy", it.noisy), ("clean", it.clean)):
            path = (out_dir / kind / it.name).with_suffix(".wav")
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, x, it.rate, subtype="FLOAT")
    log.info("test set written: %s (%d noisy/clean pairs)", out_dir, len(items))
    return out_dir


class ProcessedFolder:
    """A system whose outputs already exist: another tool's enhanced files, matched to the inputs by
    relative path (any extension, any rate; resampled, downmixed and length-matched). Used for test
    items (denoiselab-evaluate +processed.NAME=DIR) and device recordings (denoiselab-device processed=DIR)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise FileNotFoundError(f"processed-output folder does not exist: {self.folder}")
        self.files = {str(p.relative_to(self.folder).with_suffix("")): p for p in audio.find_all([self.folder])}

    def check_names(self, names: Sequence[str], what: str = "test file") -> None:
        """Fail before any work when an output is missing (names: paths relative to the folder)."""
        missing = [n for n in names if str(Path(n).with_suffix("")) not in self.files]
        if missing:
            raise FileNotFoundError(f"{self.folder} has no output for {what} {missing[0]}"
                                    f" ({len(missing)} of {len(names)} missing; outputs are matched by path "
                                    "relative to the folder, any audio extension)")

    def check(self, items: Sequence[TestItem]) -> None:
        self.check_names([it.name for it in items])

    def load_named(self, name: str, n: int, rate: int) -> np.ndarray:
        """The output for input ``name`` at ``rate``, cut or zero-padded to the input's ``n`` samples."""
        self.check_names([name])
        path = self.files[str(Path(name).with_suffix(""))]
        y, file_rate = audio.read(path)
        y = audio.resample(audio.to_mono(y), file_rate, rate)
        if abs(y.shape[-1] - n) > 0.01 * n:
            log.warning("%s: output length %d differs from the input's %d samples", path, y.shape[-1], n)
        return np.pad(y[:n], (0, max(0, n - y.shape[-1]))).astype(np.float32)

    def load(self, item: TestItem) -> np.ndarray:
        return self.load_named(item.name, item.noisy.shape[-1], item.rate)


def snr_bucket(snr: float, width: float = 5.0) -> str:
    if math.isnan(snr):
        return "n/a"
    lo = math.floor(snr / width) * width
    return f"{lo:g}..{lo + width:g}"


# ---------------------------------------------------------------------- systems
def build_systems(ckpts: Sequence[str], names: Sequence[str], baselines: Sequence[str], accelerator: str,
                  strength: float, atten_limit_db: float | None) -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    from denoiselab.core.enhancer import Enhancer
    from denoiselab.core.model_files import DEFAULT_NAME, load_denoiser

    if len(names) > len(ckpts):
        raise UserError(f"names has {len(names)} entries for {len(ckpts)} ckpt(s): names label ckpt in order, so "
                        "one of them would label nothing (give as many names as checkpoints, or fewer)")
    systems: dict[str, Callable] = {}
    for b in ["noisy", *[b for b in baselines if b != "noisy"]]:
        systems[b] = get_baseline(b)
    for i, ck in enumerate(ckpts):
        den = load_denoiser(ck)
        enh = Enhancer(den, accelerator=accelerator, strength=strength, atten_limit_db=atten_limit_db)
        default = f"{den.net_name} (shipped default)" if str(ck) == DEFAULT_NAME else None
        name = names[i] if i < len(names) else default or _model_name(Path(ck), den.net_name)
        while name in systems:
            name += "'"
        systems[name] = enh.enhance
    return systems


def _model_name(path: Path, net: str) -> str:
    run = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
    return f"{net} ({run})"


# ---------------------------------------------------------------------- evaluation
def evaluate(items: list[TestItem], systems: dict[str, Callable], metric_names: Sequence[str], num_workers: int,
             out_dir: Path, examples: int = 2, plots: bool = True) -> tuple[list[dict], list[dict]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, list[np.ndarray]] = {}
    for name, fn in systems.items():
        run_one = fn.load if isinstance(fn, ProcessedFolder) else (lambda it, fn=fn: fn(it.noisy, it.rate))
        outputs[name] = [np.asarray(run_one(it), dtype=np.float32)
                         for it in track(items, f"denoising with {name}", "files")]
    jobs = [(outputs[s][i], it.rate, it.clean) for s in systems for i, it in enumerate(items)]
    scores = M.score_many(jobs, metric_names, num_workers=num_workers, progress="scoring")
    rows: list[dict[str, Any]] = []
    noisy_scores = scores[: len(items)]
    for si, s in enumerate(systems):
        for i, it in enumerate(items):
            sc = scores[si * len(items) + i]
            row = {"system": s, "file": it.name, "snr_db": it.snr_db, "snr_bucket": snr_bucket(it.snr_db),
                   "noise_type": it.noise_type, "rate": it.rate, "clean_rate": it.clean_rate or it.rate}
            row.update({m: sc[m] for m in metric_names})
            row.update({f"d_{m}": sc[m] - noisy_scores[i][m] for m in metric_names})
            rows.append(row)
    summary = summarize(rows, metric_names)
    _write_outputs(rows, summary, metric_names, items, outputs, out_dir, examples, plots)
    return rows, summary


def summarize(rows: list[dict], metric_names: Sequence[str]) -> list[dict]:
    """Per-system means over the same files; ``valid_<metric>`` counts the files the metric could
    score (a NaN, e.g. PESQ on a file without speech, is left out of the mean and shows here)."""
    keys = list(metric_names) + [f"d_{m}" for m in metric_names]
    summary = report.group_means(rows, ["system"], keys)
    for r in summary:
        mine = [x for x in rows if x["system"] == r["system"]]
        for m in metric_names:
            r[f"valid_{m}"] = sum(not math.isnan(float(x[m])) for x in mine)
        for k in SUMMARY_KEYS:
            r.setdefault(k, math.nan)
    return summary


def _write_outputs(rows, summary, metric_names, items, outputs, out_dir: Path, examples: int, plots: bool) -> None:
    cols = ["system", "file", "snr_db", "snr_bucket", "noise_type", "rate", "clean_rate", *metric_names,
            *[f"d_{m}" for m in metric_names]]
    report.write_csv(out_dir / "per_file.csv", rows, cols)
    sum_cols = ["system", "n", *list(dict.fromkeys([*SUMMARY_KEYS, *metric_names])),
                *[f"d_{m}" for m in metric_names], *[f"valid_{m}" for m in metric_names]]
    report.write_csv(out_dir / "summary.csv", summary, sum_cols)
    main_metrics = [m for m in ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "seg_snr", "dnsmos_ovrl")
                    if m in metric_names]
    md = ["# denoiselab-evaluate", "", f"{len(items)} test files; metrics: {', '.join(metric_names)}.", "",
          "## Overall (mean)", "", report.markdown_table(summary, ["system", "n", *main_metrics]), "",
          *_invalid_note(summary, main_metrics),
          "## Improvement over the noisy input (mean of per-file differences)", "",
          report.markdown_table(summary, ["system", *[f"d_{m}" for m in main_metrics]])]
    for key, title in (("snr_bucket", "By input SNR (dB)"), ("noise_type", "By noise type")):
        groups = report.group_means(rows, [key, "system"], main_metrics, sort=key == "snr_bucket")
        md += ["", f"## {title}", "", report.markdown_table(groups, [key, "system", "n", *main_metrics])]
    if plots:
        pngs = []
        for m in [m for m in ("pesq_wb", "si_sdr", "estoi") if m in metric_names]:
            pngs.append(report.plot_metric_by_group(rows, "snr_bucket", "system", m, out_dir / f"{m}_by_snr.png"))
            dist = {s: [r[f"d_{m}"] for r in rows if r["system"] == s] for s in dict.fromkeys(r["system"] for r in rows)
                    if s != "noisy"}
            if dist:
                pngs.append(report.plot_distributions(dist, out_dir / f"{m}_improvement.png", f"Δ {m}",
                                                      f"{m} improvement over noisy, per file"))
        if items:
            it = items[0]
            sig = {"noisy": it.noisy, "clean": it.clean, **{s: outputs[s][0] for s in outputs if s != "noisy"}}
            pngs.append(report.plot_spectrograms(sig, it.rate, out_dir / "spectrogram_example.png", it.name))
        md += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in pngs]
    ex_dir = out_dir / "examples"
    for i, it in enumerate(items[:examples]):
        d = ex_dir / f"{i:02d}_{safe_filename(Path(it.name).stem)}"
        d.mkdir(parents=True, exist_ok=True)
        audio.write(d / "clean.wav", it.clean, it.rate)
        for s, outs in outputs.items():
            audio.write(d / f"{safe_filename(s)}.wav", outs[i], it.rate)
    (out_dir / "summary.md").write_text("\n".join(md) + "\n")


def _invalid_note(summary: list[dict], metric_names: Sequence[str]) -> list[str]:
    """A line per system and metric whose mean leaves files out (NaN scores), so no mean hides it."""
    notes = [f"- {r['system']}: {m} scored {r[f'valid_{m}']} of {r['n']} files"
             for r in summary for m in metric_names if r[f"valid_{m}"] < r["n"]]
    return ["Means leave out files a metric could not score:", "", *notes, ""] if notes else []


def resolve_metrics(names: Sequence[str]) -> list[str]:
    names = list(names)
    if any(m in M.DNSMOS for m in names) and not M.dnsmos_available():
        log.warning("DNSMOS needs the dnsmos extra (speechmos + onnxruntime); its columns will be NaN")
        names = [m for m in names if m not in M.DNSMOS]
    return names
