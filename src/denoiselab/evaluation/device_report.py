"""The device report: per_recording.csv, per_device.csv, report.md, report.html (self-contained, PNGs
embedded) and the console's closing line, from the rows device.py scored and device_stats aggregated."""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import numpy as np

from denoiselab.core.files import safe_filename
from denoiselab.evaluation import report
from denoiselab.evaluation.device_stats import SCORES, ranking_stability
from denoiselab.evaluation.lab_measures import FR_BANDS


def _not_in_full(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(refused recordings, recordings scored without a reference)."""
    return ([r for r in rows if r["status"] == "refused"],
            [r for r in rows if r["status"] == "ok" and not r["reference"]])


def outcome(rows: list[dict]) -> str:
    """One line for the console: how many recordings were scored in full, without a reference, refused."""
    refused, no_ref = map(len, _not_in_full(rows))
    line = f"{len(rows)} recordings: {len(rows) - refused - no_ref} scored against their reference"
    if no_ref:
        line += f", {no_ref} without a reference (non-intrusive scores only)"
    if refused:
        line += f", {refused} refused (the report says why)"
    return line


#: Each metric's standard and implementation, as the report states them.
STANDARDS = {
    "pesq_wb": "PESQ wide band, ITU-T P.862.2 (2007), `pesq` package (P.862 reference C code); ITU-T withdrew "
               "P.862 in 2024 in favour of P.863 (POLQA), which is licensed and not included",
    "pesq_nb": "PESQ narrow band, ITU-T P.862 (MOS-LQO mapping P.862.1), `pesq` package; reported for "
               "telephone-band devices",
    "estoi": "extended STOI (Jensen & Taal 2016), `pystoi`",
    "si_sdr": "scale-invariant SDR (Le Roux et al. 2019); measures waveform fidelity, so it reads very low for "
              "a band-limiting or filtering device that sounds fine: left out for narrow-band devices",
    "dnsmos_ovrl": "DNSMOS P.835 overall (Reddy et al. 2022), `sig_bak_ovr.onnx` as shipped in `speechmos`; "
                   "non-intrusive (no reference needed)",
    "asl_dbov": "active speech level, ITU-T P.56 method B (dBov)",
}


def write_report(rows: list[dict], devs: list[dict], out: Path, settings: dict[str, Any],
                 examples: dict[str, tuple[np.ndarray, np.ndarray, int]], calib: dict[str, Any] | None = None
                 ) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    report.write_csv(out / "per_recording.csv", rows)
    report.write_csv(out / "per_device.csv", devs)
    have = [s for s in SCORES if any(not math.isnan(d[f"{s}_before"]) for d in devs)]
    pngs: list[Path] = []
    labels = [d["device"] for d in devs]
    for s in have:
        pngs.append(report.plot_bars(labels, [d[f"{s}_before"] for d in devs], [d[f"{s}_after"] for d in devs],
                                     [d[f"{s}_before_ci95"] for d in devs], [d[f"{s}_after_ci95"] for d in devs],
                                     s, out / f"device_{s}.png", f"{s} per device (mean, 95 % CI)"))
    fr = {d["device"]: [d.get(f"fr_{fc}", math.nan) for fc in FR_BANDS] for d in devs}
    if any(not math.isnan(v) for vals in fr.values() for v in vals):
        pngs.append(_plot_responses(fr, out / "frequency_response.png"))
    ok = [r for r in rows if r["status"] == "ok"]
    main_score = next((s for s in ("pesq_wb", "dnsmos_ovrl") if s in have), None)
    if main_score and ok:
        pts = [(float(r["snr_est"]), float(r[f"{main_score}_before"]), r["device"]) for r in ok
               if f"{main_score}_before" in r and not math.isnan(float(r["snr_est"]))]
        if pts:
            pngs.append(report.plot_scatter([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts],
                                            "estimated SNR of the recording (dB)", f"{main_score} before denoising",
                                            out / "score_vs_snr.png", f"{main_score} vs estimated SNR"))
    for dev, (before, after, sr) in list(examples.items())[:3]:
        pngs.append(report.plot_spectrograms({"recording": before, "denoised": after}, sr,
                                             out / f"spectrogram_{safe_filename(dev)}.png", f"device {dev}"))
    stab = [ranking_stability(devs, s) for s in have if s != "snr_est"]
    if calib:
        report.write_csv(out / "calibration.csv", [calib])
    md = _markdown(rows, devs, have, stab, settings, pngs, calib)
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(_html(md, pngs))
    return {"md": out / "report.md", "html": out / "report.html"}


def _plot_responses(fr: dict[str, list[float]], path: Path) -> Path:
    """Frequency response per device; bands whose coherence was too low are missing (unreliable)."""
    plt = report._plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for dev, vals in fr.items():
        ax.semilogx(FR_BANDS[: len(vals)], vals, marker="o", ms=3, label=dev)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("Hz (third-octave bands)")
    return report._save(fig, ax, path, "Frequency response against the reference (gaps: coherence < 0.5)",
                        "dB re 1 kHz", legend=True)


def _fmt(v: Any, ci: Any = None, digits: int = 2) -> str:
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        text = f"{v:.{digits}f}"
        return f"{text} ± {ci:.{digits}f}" if isinstance(ci, float) and not math.isnan(ci) else text
    return str(v)


def _score_table(devs: list[dict], have: list[str], tag: str) -> list[str]:
    cols = [s for s in ("pesq_wb", "pesq_nb", "estoi", "si_sdr", "dnsmos_ovrl") if s in have]
    head = ["device", "n", *cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in devs:
        cells = [d["device"], str(d["n"])]
        for s in cols:
            if s == "si_sdr" and d.get("bandwidth") == "narrow":
                cells.append("n/a (band-limited)")
            else:
                cells.append(_fmt(d[f"{s}_{tag}"], d.get(f"{s}_{tag}_ci95")))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _markdown(rows, devs, have, stab, settings, pngs, calib) -> str:
    refused, no_ref = _not_in_full(rows)
    model = settings.get("denoiser", "the denoiser")
    primary = next((st for st in stab if st["score"] in ("pesq_wb", "dnsmos_ovrl")), None)
    lines = ["# Device quality report", "",
             f"{len(devs)} devices, {len(rows)} recordings ({len(refused)} refused, {len(no_ref)} without "
             "reference). The raw recordings' scores are the result; scores after denoising are a diagnostic "
             f"(room noise removed by {Path(str(model)).name}).", "", "## Answer", ""]
    if primary is not None:
        score = primary["score"]
        ranked = sorted(devs, key=lambda d: -(d[f"{score}_before"] if not math.isnan(d[f"{score}_before"]) else -1e9))
        ranking = ", ".join(f"{i}. {d['device']} {_fmt(d[f'{score}_before'], d.get(f'{score}_before_ci95'))}"
                            for i, d in enumerate(ranked, 1))
        resolved = sum(p["resolved"] for p in primary["pairs"] if p["when"] == "before")
        n_pairs = len(primary["pairs"]) // 2
        lines += [f"- Ranking by {score} of the raw recordings (mean ± 95 % CI): {ranking}.",
                  f"- Differences larger than their intervals: {resolved} of {n_pairs} device pairs; the other "
                  "pairs are not distinguishable on this score with these recordings.",
                  f"- Denoising {'changed' if primary['changed'] else 'did not change'} this order (Kendall tau "
                  f"{primary['kendall_tau']:.2f} between the raw and denoised orders)."]
    if calib and "mae_before" in calib:
        verdict = ("the denoised scores are closer to the quiet room and keep its order: they can be used"
                   if calib["trust_denoised"] else "denoising did not bring the scores closer to the quiet room "
                   "without changing the order: use the raw scores")
        lines += [f"- Calibration on this campaign's quiet-room recordings ({calib['devices']} devices, "
                  f"{calib['score']}): error against the quiet room {calib['mae_before']:.2f} raw vs "
                  f"{calib['mae_after']:.2f} denoised, Kendall tau {calib['tau_before']:.2f} vs "
                  f"{calib['tau_after']:.2f}; denoising moves the quiet-room scores by {calib['quiet_change']:.2f} "
                  f"on average. Verdict: {verdict}."]
    elif calib is None:
        lines += ["- No calibration: add quiet-room recordings of the same devices as DIR/quiet/<device>/ to "
                  "check on your own devices whether denoising recovers quiet-room scores."]
    else:
        lines += [f"- No calibration: the quiet-room recordings share {calib['devices']} device(s) with this "
                  f"campaign (quiet room: {calib.get('quiet_room_devices', '?')}); it needs two or more devices "
                  "recorded in both rooms, in folders of the same name."]
    lines += ["", "## Scores of the raw recordings (the result)", "", *_score_table(devs, have, "before"), "",
              f"## After removing the room noise with {Path(str(model)).name} (diagnostic)", "",
              *_score_table(devs, have, "after"), "", "## Lab measurements", "",
              "| device | band | delay ms | level dBov | level vs reference dB | noise floor dBFS (denoised) "
              "| clipping % | response change by denoising dB | retest SD PESQ |", "|---" * 9 + "|"]
    for d in devs:
        clip = d.get("clipping_rate")
        clip_pct = 100 * clip if isinstance(clip, float) else None
        lines.append(f"| {d['device']} | {d.get('bandwidth') or '–'} | {_fmt(d.get('delay_ms'), digits=1)} | "
                     f"{_fmt(d.get('asl_dbov'), digits=1)} | {_fmt(d.get('level_diff_db'), digits=1)} | "
                     f"{_fmt(d.get('noise_floor_dbfs'), digits=1)} ({_fmt(d.get('noise_floor_after_dbfs'), digits=1)}) "
                     f"| {_fmt(clip_pct, digits=3)} | {_fmt(d.get('fr_change_db'), digits=1)} | "
                     f"{_fmt(d.get('retest_sd_pesq_wb'))} |")
    lines += ["", "Frequency response per third-octave band (dB re 1 kHz) is in per_device.csv (fr_<Hz>) and the "
              "plot below; bands with a coherence under 0.5 are left out as unreliable. The noise floor after "
              "denoising and the response change (mean absolute dB over the reliable bands) show what the "
              "denoiser did besides removing the room: in a quiet room they are the device's own self-noise, hum "
              "and colouring, which an evaluation should keep.", "",
              "## Ranking stability", ""]
    for st in stab:
        resolved_b = sum(p["resolved"] for p in st["pairs"] if p["when"] == "before")
        resolved_a = sum(p["resolved"] for p in st["pairs"] if p["when"] == "after")
        n_pairs = len(st["pairs"]) // 2
        lines.append(f"- {st['score']}: ranking {'changed' if st['changed'] else 'unchanged'} by denoising (Kendall "
                     f"tau {st['kendall_tau']:.2f}); raw: {' > '.join(st['before'])}; denoised: "
                     f"{' > '.join(st['after'])}; resolved pairs {resolved_b}/{n_pairs} raw, {resolved_a}/{n_pairs} "
                     "denoised.")
    lines += ["", "## Metrics and their standards", ""] + [f"- {k}: {v}" for k, v in STANDARDS.items()]
    lines += ["", "## Settings (to reproduce)", ""] + [f"- {k}: `{v}`" for k, v in settings.items()]
    if no_ref:
        lines += ["", "## Recordings without a reference", "",
                  "These got the non-intrusive scores only (DNSMOS, estimated SNR):", ""]
        lines += [f"- {r['device']}: {Path(r['file']).name}" for r in no_ref]
    if refused:
        lines += ["", "## Refused recordings", ""]
        lines += [f"- {r['device']}: {Path(r['file']).name}: {r['note']}" for r in refused]
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in pngs]
    return "\n".join(lines) + "\n"


def _inline(text: str) -> str:
    """Markdown inline marks to HTML (escaped): `code`, **bold**."""
    import html
    import re

    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def _html(md: str, pngs: list[Path]) -> str:
    """A self-contained page: the markdown rendered (tables that wrap, no markdown syntax left), PNGs
    embedded as data URIs."""
    body: list[str] = []
    table: list[str] = []
    items: list[str] = []

    def flush() -> None:
        if table:
            rows = [r.strip().strip("|").split("|") for r in table if not set(r.replace("|", "").strip()) <= set("-")]
            head, *rest = rows
            body.append("<div class='tbl'><table><thead><tr>" + "".join(f"<th>{_inline(c.strip())}</th>" for c in head)
                        + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{_inline(c.strip())}</td>" for c in r)
                                                           + "</tr>" for r in rest) + "</tbody></table></div>")
            table.clear()
        if items:
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    images = {p.name: p for p in pngs}
    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        if line.startswith("# "):
            body.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.startswith("![") and "](" in line:
            name = line.split("](")[1].rstrip(")")
            if name in images:
                data = base64.b64encode(images[name].read_bytes()).decode()
                body.append(f'<img alt="{name}" src="data:image/png;base64,{data}">')
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    flush()
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.4}"
             ".tbl{overflow-x:auto}table{border-collapse:collapse;margin:1em 0;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}th{white-space:normal}"
             "td:first-child,th:first-child{text-align:left}li{margin:.3em 0}code{font-size:12px;"
             "word-break:break-all;background:#f4f4f4}img{max-width:100%;display:block;margin:1em 0}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Device quality report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
