"""denoiselab-compare: rank the jobs of a multirun by their validation metrics (no W&B needed).

    denoiselab-compare outputs/train/multiruns/2026-11-27_10-00-00 [--metrics val/si_sdr,val/pesq_wb]

Works whatever logger the jobs ran with (each run dir keeps metrics.jsonl). Writes compare.csv,
compare.md and compare.png into the multirun folder and prints the ranking with each job's steps,
wall time, parameters and best checkpoint.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from denoiselab.cli.errors import run_cli
from denoiselab.evaluation import report
from denoiselab.evaluation.compare import compare


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="denoiselab-compare", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("sweep_dir", help="a multirun folder (outputs/train/multiruns/<time>)")
    p.add_argument("--metrics", default="val/si_sdr,val/si_sdri,val/pesq_wb,val/stoi",
                   help="comma-separated logged metrics; the ranking uses the first")
    args = p.parse_args(argv)
    sweep = Path(args.sweep_dir)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    rows = compare(sweep, metrics)
    present = [m for m in metrics if any(not math.isnan(r[m]) for r in rows)]
    cols = ["rank", "job", *present, "steps", "minutes", "params", "overrides"]
    report.write_csv(sweep / "compare.csv", rows, [*cols, "best_checkpoint", "note"])
    direction = "lowest" if "loss" in metrics[0] else "best"
    md = [f"# Sweep {sweep.name}", "", f"Ranked by the {direction} {metrics[0]} over each job's validations; "
          "compare steps and minutes before reading a ranking across jobs.", "",
          report.markdown_table(rows, cols), ""]
    md += ["## Best checkpoints", ""] + [f"- {r['job']}: `{r['best_checkpoint'] or 'none'}`" for r in rows]
    notes = [r for r in rows if r["note"]]
    if notes:
        md += ["", "## Jobs without metrics", ""] + [f"- {r['job']}: {r['note']}" for r in notes]
    if present:
        report.plot_bars([r["job"] for r in rows], [r[present[0]] for r in rows], None, None, None, present[0],
                         sweep / "compare.png", f"{sweep.name}: best {present[0]} per job")
        md += ["", "![compare](compare.png)"]
    (sweep / "compare.md").write_text("\n".join(md) + "\n")
    from rich.console import Console

    Console().print(report.rich_table(rows, cols[:-1], f"sweep {sweep.name}"))
    for r in rows:  # paths on their own lines: a table never cuts them
        print(f"{r['job']}: best checkpoint {r['best_checkpoint'] or 'none'}")
        if r["note"]:
            print(f"{r['job']}: {r['note']}")
    if not present:
        logged = sorted({m for r in rows for m in r["logged"]})
        print(f"denoiselab-compare: no job in {sweep} has any of {', '.join(metrics)}"
              + (f"; the jobs logged {', '.join(logged)} (--metrics chooses)" if logged else ""), file=sys.stderr)
        return 1
    print(f"written: {sweep / 'compare.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli("denoiselab-compare", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
