"""Per-device statistics of a device campaign: means with 95 % CIs per device, the ranking's stability
under denoising, and the calibration against a quiet-room campaign of the same devices (numbers only: the
report module writes them, device.py produces the rows)."""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np

from denoiselab.evaluation import report
from denoiselab.evaluation.lab_measures import FR_BANDS

SCORES = ("pesq_wb", "pesq_nb", "estoi", "si_sdr", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "snr_est")


#: Scores that need no reference: a recording refused for alignment still has them.
NON_INTRUSIVE = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "snr_est")


#: Lab measurements averaged per device (from the aligned recordings).
MEASURES = ("delay_ms", "asl_dbov", "level_diff_db", "noise_floor_dbfs", "clipping_rate",
            *[f"fr_{fc}" for fc in FR_BANDS],
            # what denoising did to the device's own defects (lab_measures.defect_change)
            "noise_floor_after_dbfs", "clipping_rate_after", "fr_change_db")


def retest_spread(rows: list[dict], key: str) -> float:
    """Test-retest spread: the standard deviation of ``key`` over repeated takes of the same reference
    on one device, pooled over references (NaN without repeated takes)."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r.get("reference") and r.get(key) not in (None, "") and not math.isnan(float(r[key])):
            groups.setdefault(r["reference"], []).append(float(r[key]))
    repeated = [np.var(v, ddof=1) for v in groups.values() if len(v) > 1]
    return float(np.sqrt(np.mean(repeated))) if repeated else math.nan


def per_device(rows: list[dict]) -> list[dict]:
    """Per-device means with 95 % CIs: intrusive scores over the aligned recordings, non-intrusive ones
    over every recording that has them (so a device whose references all failed stays ranked by DNSMOS)."""
    out = []
    for dev in dict.fromkeys(r["device"] for r in rows):
        everything = [r for r in rows if r["device"] == dev]
        mine = [r for r in everything if r["status"] == "ok"]
        refused = sum(r["status"] == "refused" for r in everything)
        row: dict[str, Any] = {"device": dev, "n": len(mine), "refused": refused}
        for s in SCORES:
            source = everything if s in NON_INTRUSIVE else mine
            for tag in ("before", "after"):
                key = f"{s}_{tag}" if s != "snr_est" else ("snr_est" if tag == "before" else "snr_est_after")
                m, ci, _ = report.mean_ci(float(r[key]) for r in source if key in r and r[key] != "")
                row[f"{s}_{tag}"], row[f"{s}_{tag}_ci95"] = m, ci
        for key in MEASURES:
            row[key] = report.mean_ci(float(r[key]) for r in mine if r.get(key) not in (None, ""))[0]
        bands = [r["bandwidth"] for r in mine if r.get("bandwidth")]
        row["bandwidth"] = max(set(bands), key=bands.count) if bands else ""
        row["retest_sd_pesq_wb"] = retest_spread(mine, "pesq_wb_before")
        out.append(row)
    for s in SCORES:
        for tag in ("before", "after"):
            _rank(out, f"{s}_{tag}")
    return out


def _rank(rows: list[dict], key: str) -> None:
    vals = [(r[key], i) for i, r in enumerate(rows) if not math.isnan(r[key])]
    for rank, (_, i) in enumerate(sorted(vals, key=lambda t: -t[0]), 1):
        rows[i][f"rank_{key}"] = rank
    for r in rows:
        r.setdefault(f"rank_{key}", "")


def ranking_stability(devs: list[dict], score: str) -> dict[str, Any]:
    """Does the device order by ``score`` change after denoising, and which differences are resolved?"""
    b = [d for d in devs if not math.isnan(d[f"{score}_before"]) and not math.isnan(d[f"{score}_after"])]
    before = [d["device"] for d in sorted(b, key=lambda d: -d[f"{score}_before"])]
    after = [d["device"] for d in sorted(b, key=lambda d: -d[f"{score}_after"])]
    pairs = []
    for x, y in combinations(b, 2):
        for tag in ("before", "after"):
            diff = x[f"{score}_{tag}"] - y[f"{score}_{tag}"]
            ci = math.hypot(_z(x[f"{score}_{tag}_ci95"]), _z(y[f"{score}_{tag}_ci95"]))
            pairs.append({"pair": f"{x['device']} vs {y['device']}", "when": tag, "difference": diff, "ci95": ci,
                          "resolved": bool(ci > 0 and abs(diff) > ci)})
    return {"score": score, "before": before, "after": after, "changed": before != after,
            "kendall_tau": _kendall(before, after), "pairs": pairs}


def _z(v: float) -> float:
    return 0.0 if v is None or math.isnan(v) else v


def _kendall(a: list[str], b: list[str]) -> float:
    if len(a) < 2:
        return math.nan
    pos = {d: i for i, d in enumerate(b)}
    concordant = discordant = 0
    for i, j in combinations(range(len(a)), 2):
        if (pos[a[i]] - pos[a[j]]) * (i - j) > 0:
            concordant += 1
        else:
            discordant += 1
    return (concordant - discordant) / (concordant + discordant)



def calibration(noisy_devs: list[dict], quiet_devs: list[dict], score: str = "pesq_wb") -> dict[str, Any]:
    """How close the noisy-room campaign comes to the quiet-room truth, raw and after denoising: mean
    absolute error of the per-device scores, Kendall tau of the device order, and how much denoising
    moves the quiet-room scores themselves (a denoiser should leave a device's own defects alone)."""
    truth = {d["device"]: d[f"{score}_before"] for d in quiet_devs if not math.isnan(d[f"{score}_before"])}
    quiet_after = {d["device"]: d[f"{score}_after"] for d in quiet_devs}
    common = [d for d in noisy_devs if d["device"] in truth and not math.isnan(d[f"{score}_before"])]
    out: dict[str, Any] = {"score": score, "devices": len(common)}
    if len(common) < 2:  # nothing to rank: name the quiet room's devices, so a naming slip shows
        out["quiet_room_devices"] = ", ".join(sorted(truth)) or "none scored"
        return out
    order_truth = sorted(truth, key=lambda k: -truth[k])
    for tag in ("before", "after"):
        vals = {d["device"]: d[f"{score}_{tag}"] for d in common}
        out[f"mae_{tag}"] = float(np.mean([abs(vals[k] - truth[k]) for k in vals]))
        order = sorted(vals, key=lambda k: -vals[k])
        out[f"tau_{tag}"] = _kendall([k for k in order_truth if k in vals], order)
    moved = [abs(quiet_after[k] - truth[k]) for k in truth if not math.isnan(quiet_after.get(k, math.nan))]
    out["quiet_change"] = float(np.mean(moved)) if moved else math.nan
    out["trust_denoised"] = bool(out["mae_after"] < out["mae_before"] and out["tau_after"] >= out["tau_before"])
    return out
