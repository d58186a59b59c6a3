"""denoiselab-evaluate: score checkpoints and classic baselines on one test set, side by side.

    denoiselab-evaluate ckpt=[RUN/checkpoints/last.ckpt,...] data.noisy=DIR data.clean=DIR \
        baselines=[noisy,specsub,wiener] hydra.run.dir=OUT
    denoiselab-evaluate ckpt=default data.clean=DIR data.noise=DIR data.snrs=[-5,0,5,10,15]

Writes per_file.csv, summary.csv, summary.md, plots (PNG) and example wavs to the run dir, and
prints the summary.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from denoiselab.cli.common import accelerator_of, as_list
from denoiselab.cli.errors import hydra_cli
from denoiselab.core.errors import UserError
from denoiselab.core.rooms import RoomAugment
from denoiselab.evaluation import report
from denoiselab.evaluation.evaluate import (
    ProcessedFolder,
    build_systems,
    evaluate,
    mixed_items,
    paired_items,
    resolve_metrics,
    write_testset,
)

log = logging.getLogger("denoiselab.cli.evaluate")


def check_settings(cfg: DictConfig) -> None:
    """Refuse settings that would score nothing or quietly something else, naming the key."""
    d = cfg.data
    if d.get("clean") and d.get("noise") and not d.get("noisy") and not as_list(d.snrs):
        raise UserError("data.snrs is empty: list the SNRs to mix at, e.g. data.snrs=[-5,0,5,10,15]")
    if d.get("max_files") is not None and int(d.max_files) < 1:
        raise UserError(f"data.max_files must be >= 1 (null: every file), got {d.max_files}")
    if d.get("max_seconds") is not None and float(d.max_seconds) <= 0:
        raise UserError(f"data.max_seconds must be > 0 (null: whole files), got {d.max_seconds}")
    if not as_list(cfg.metrics):
        raise UserError("metrics is empty: list what to score, e.g. metrics=[pesq_wb,estoi,si_sdr]")
    if int(cfg.examples) < 0:
        raise UserError(f"examples must be >= 0, got {cfg.examples}")
    if int(cfg.num_workers) < 0:  # was taken as no workers
        raise UserError(f"num_workers must be >= 0 (0: score in this process), got {cfg.num_workers}")
    if d.get("seed") is not None and int(d.seed) < 0:  # numpy's 'expected non-negative integer' named no key
        raise UserError(f"data.seed must be >= 0, got {d.seed}")


def say_earlier_evaluation(out_dir: Path, save_testset: bool, examples: int) -> None:
    """A run dir given again (hydra.run.dir=...) held another evaluation: its tables are replaced, and any
    test set or examples this run does not write stay beside the new tables, from the other run."""
    if not (out_dir / "summary.csv").is_file():
        return
    stale = [name for name, written in (("testset", save_testset), ("examples", examples > 0))
             if (out_dir / name).is_dir() and not written]
    log.warning("%s holds an earlier evaluation: its summary and per-file tables are replaced%s", out_dir,
                f"; {' and '.join(f'{n}/' for n in stale)} there stay from the earlier run" if stale else "")


def run(cfg: DictConfig) -> list[dict]:
    out_dir = Path(cfg.paths.output_dir)
    check_settings(cfg)
    say_earlier_evaluation(out_dir, bool(cfg.get("save_testset")), int(cfg.examples))
    d = cfg.data
    if d.get("noisy") and d.get("clean"):
        items = paired_items(d.noisy, d.clean, d.get("max_files"), bool(d.get("align", False)))
    elif d.get("clean") and d.get("noise"):
        rooms = (RoomAugment(**{"p": 1.0, "seed": 1000, "cache_dir": cfg.paths.get("cache_dir"),
                                **OmegaConf.to_container(d.rooms)}) if d.get("rooms") else None)
        items = mixed_items(d.clean, d.noise, [float(s) for s in as_list(d.snrs)], int(d.seed), int(d.sample_rate),
                            d.get("max_files"), d.get("max_seconds"), bool(d.get("every_snr", True)), rooms)
    else:
        raise ValueError("give a test set: data.noisy + data.clean (paired folders) or "
                         "data.clean + data.noise (mixed at data.snrs)")
    if cfg.get("save_testset"):
        write_testset(items, out_dir / "testset")
    ckpts = [str(c) for c in as_list(cfg.get("ckpt"))]
    systems = build_systems(ckpts, [str(n) for n in as_list(cfg.get("names"))],
                            [str(b) for b in as_list(cfg.baselines)], accelerator_of(cfg),
                            float(cfg.strength), cfg.get("atten_limit_db"))
    for name, folder in (cfg.get("processed") or {}).items():
        if name in systems:
            raise ValueError(f"processed.{name}: a system of that name is already scored")
        systems[str(name)] = ProcessedFolder(folder)
        systems[str(name)].check(items)
    metric_names = resolve_metrics([str(m) for m in as_list(cfg.metrics)])
    rows, summary = evaluate(items, systems, metric_names, int(cfg.num_workers), out_dir, int(cfg.examples),
                             bool(cfg.plots))
    from rich.console import Console

    shown = [m for m in ("pesq_wb", "estoi", "si_sdr", "dnsmos_ovrl") if m in metric_names]
    Console().print(report.rich_table(summary, ["system", "n", *shown, *[f"d_{m}" for m in shown[:3]]],
                                      f"denoiselab-evaluate: {len(items)} files"))
    print(f"report: {out_dir / 'summary.md'}")
    return summary


def _evaluate(cfg: DictConfig) -> None:
    logging.getLogger("denoiselab").setLevel(logging.INFO)
    run(cfg)


main = hydra_cli("denoiselab-evaluate", "evaluate", _evaluate)


if __name__ == "__main__":
    main()
