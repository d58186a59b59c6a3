"""Tables, statistics and plots shared by the evaluate, compare and device reports."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k, "")) for k in columns})
    tmp.replace(path)
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return v


def mean_ci(values: Iterable[float], z: float = 1.96) -> tuple[float, float, int]:
    """Mean, half-width of the normal-approximation 95 % confidence interval, and count (NaNs dropped)."""
    x = np.array([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], dtype=float)
    if x.size == 0:
        return math.nan, math.nan, 0
    half = z * x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else math.nan
    return float(x.mean()), float(half), int(x.size)


def group_means(rows: Sequence[dict[str, Any]], keys: Sequence[str], metrics: Sequence[str],
                sort: bool = False) -> list[dict[str, Any]]:
    """Mean of each metric per unique combination of ``keys`` (order of first appearance, or with
    ``sort`` numeric order of the first key: SNR buckets -5..0 before 0..5 before 10..15)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for gk, members in groups.items():
        row = dict(zip(keys, gk))
        row["n"] = len(members)
        for m in metrics:
            row[m] = mean_ci(float(x[m]) for x in members if m in x)[0]
        out.append(row)
    if sort:
        out.sort(key=lambda r: _sort_key(r[keys[0]]))
    return out


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], digits: int = 3) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "–" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def rich_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str):
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="left" if c in ("system", "device", "job") else "right")
    for r in rows:
        t.add_row(*[("–" if isinstance(r.get(c), float) and math.isnan(r[c]) else
                     f"{r[c]:.3f}" if isinstance(r.get(c), float) else str(r.get(c, ""))) for c in columns])
    return t


# ---------------------------------------------------------------------- plots
def _plt():
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, ax, path: str | Path, title: str, ylabel: str, xlabel: str | None = None, grid_axis: str = "both",
          legend: bool = False) -> Path:
    """Label, lay out, write (PNG) and close a figure."""
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis=grid_axis)
    if legend:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return Path(path)


def plot_metric_by_group(rows: Sequence[dict[str, Any]], group_key: str, series_key: str, metric: str,
                         path: str | Path, title: str | None = None) -> Path:
    """One line per series (system) of the mean metric over groups (e.g. SNR buckets)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    groups = sorted({r[group_key] for r in rows}, key=_sort_key)
    for series in dict.fromkeys(r[series_key] for r in rows):
        ys = []
        for g in groups:
            vals = [float(r[metric]) for r in rows if r[series_key] == series and r[group_key] == g]
            ys.append(mean_ci(vals)[0])
        ax.plot([str(g) for g in groups], ys, marker="o", label=str(series))
    return _save(fig, ax, path, title or f"{metric} by {group_key}", metric, group_key, legend=True)


def plot_distributions(values: dict[str, Sequence[float]], path: str | Path, xlabel: str, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    data = [[v for v in vs if not math.isnan(v)] or [0.0] for vs in values.values()]
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(values) + 1), list(values.keys()), rotation=20)
    ax.axhline(0.0, color="grey", lw=0.8)
    return _save(fig, ax, path, title, xlabel, grid_axis="y")


def plot_bars(labels: Sequence[str], before: Sequence[float], after: Sequence[float] | None, errs_before,
              errs_after, ylabel: str, path: str | Path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(labels) + 2), 4.2))
    x = np.arange(len(labels))
    w = 0.38 if after is not None else 0.6
    ax.bar(x - (w / 2 if after is not None else 0), before, w, yerr=_nan0(errs_before), capsize=3,
           label="before" if after is not None else None)
    if after is not None:
        ax.bar(x + w / 2, after, w, yerr=_nan0(errs_after), capsize=3, label="after denoising")
        ax.legend()
    ax.set_xticks(x, labels, rotation=20)
    return _save(fig, ax, path, title, ylabel, grid_axis="y")


def plot_scatter(xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], xlabel: str, ylabel: str,
                 path: str | Path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for lab in dict.fromkeys(labels):
        idx = [i for i, name in enumerate(labels) if name == lab]
        ax.scatter([xs[i] for i in idx], [ys[i] for i in idx], label=str(lab), s=18)
    return _save(fig, ax, path, title, ylabel, xlabel, legend=True)


def plot_spectrograms(signals: dict[str, np.ndarray], sr: int, path: str | Path, title: str = "") -> Path:
    """Stacked log spectrograms (dB) of the named signals, same colour scale."""
    import torch

    plt = _plt()
    n = len(signals)
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.9 * n + 0.6), sharex=True, squeeze=False)
    specs = {}
    for name, x in signals.items():
        t = torch.from_numpy(np.asarray(x, dtype=np.float32))
        s = torch.stft(t, 512, 128, window=torch.hann_window(512), return_complex=True).abs()
        specs[name] = 20 * np.log10(s.numpy() + 1e-8)
    vmax = max(float(s.max()) for s in specs.values())
    for ax, (name, s) in zip(axes[:, 0], specs.items()):
        ax.imshow(s, origin="lower", aspect="auto", vmin=vmax - 80, vmax=vmax, cmap="magma",
                  extent=[0, s.shape[1] * 128 / sr, 0, sr / 2000])
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _nan0(v):
    return None if v is None else [0.0 if (x is None or math.isnan(x)) else x for x in v]


def _sort_key(v):
    """Numbers and numeric ranges ("-5..0", "10..15") in numeric order, then text."""
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        m = re.match(r"\s*(-?\d+(?:\.\d+)?)", str(v))
        return (0, float(m.group(1)), str(v)) if m else (1, 0.0, str(v))
