"""The train task: one composed configuration -> a trained (and optionally tested) model.

``denoiselab-train`` (denoiselab.cli.train) composes the config and calls ``train``; tests call
``run`` with a config they composed in-process.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar as ProgressBarBase
from omegaconf import DictConfig, open_dict

from denoiselab.core.checkpoints import (
    FINAL_STATE_KEY,
    CheckpointError,
    best_checkpoint,
    checkpoint_meta,
    find_resumable,
    load_checkpoint,
)
from denoiselab.core.errors import UserError
from denoiselab.core.progress import interactive
from denoiselab.training.callbacks import InvocationBudget, ProgressLines, parse_duration
from denoiselab.training.finetune import (
    adopt_model_settings,
    anchor_weight,
    distill_weight,
    freeze,
    keep_start_share,
    load_weights,
    lr_scale_groups,
)
from denoiselab.training.instantiate import instantiate_callbacks, instantiate_loggers, task_wrapper
from denoiselab.training.precision import resolve_precision, trains_on_cuda
from denoiselab.training.schedules import NO_TIME_BUDGET, decays_over_time

log = logging.getLogger(__name__)


class RunDirError(UserError, RuntimeError):
    """The run dir cannot take checkpoints (not writable, full)."""


def check_output_dir(run_dir: Path, min_free_mb: int = 200) -> None:
    """Fail before any work when the run dir cannot take checkpoints."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write_test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"output dir {run_dir} is not writable ({exc.strerror or exc})") from None
    free_mb = _free_mb(run_dir)
    if free_mb is not None and free_mb < min_free_mb:
        raise RunDirError(f"output dir {run_dir} has only {free_mb:.0f} MB free; "
                           f"need at least {min_free_mb} MB for checkpoints")


def refuse_to_overwrite(run_dir: Path) -> None:
    """A fresh run in a folder that holds another run's checkpoints would overwrite its last.ckpt."""
    old = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    if old:
        raise FileExistsError(f"{run_dir} already holds checkpoints of an earlier run ({old[0].name}, ...); "
                              "continue it with auto_resume=true (or ckpt_path=...), or choose another "
                              "hydra.run.dir")


def check_scheduler_budget(cfg: DictConfig) -> None:
    """A schedule over total_steps (model/scheduler=onecycle) needs a step budget; without one,
    OneCycleLR fails deep inside Lightning with a bare 'total_steps' error. One over wall-clock time
    (cosine_time) needs a time budget."""
    sched = cfg.model.get("scheduler")
    if sched is not None and "total_steps" in sched and int(sched.total_steps) <= 0:
        raise ValueError("model/scheduler=onecycle spans trainer.max_steps, which is not set: pass "
                         "trainer.max_steps=N (a time budget, trainer.max_time, has no known length)")
    if decays_over_time(sched) and not cfg.get("time_budget") and not cfg.trainer.get("max_time"):
        raise ValueError(NO_TIME_BUDGET)


def epoch_limit(cfg: DictConfig) -> dict[str, Any]:
    """Trainer overrides so that a run limited only by the clock (trainer.max_time or time_budget, no
    max_steps / max_epochs) trains until that clock: Lightning otherwise stops after its default 1000
    epochs, which a lab's small fine-tuning set (a few references: 2 steps an epoch) reaches in minutes,
    before a time-decayed lr has settled."""
    trainer = cfg.trainer
    no_steps = trainer.get("max_steps") in (None, -1)
    clock = cfg.get("time_budget") or trainer.get("max_time")
    return {"max_epochs": -1} if clock and no_steps and trainer.get("max_epochs") is None else {}


def normalize_max_time(cfg: DictConfig) -> None:
    """trainer.max_time as Lightning reads it (DD:HH:MM:SS), from that or HH:MM:SS, MM:SS or seconds (as
    time_budget takes them): Lightning's own parser fails on anything else with a traceback."""
    value = cfg.trainer.get("max_time")
    if value in (None, "") or isinstance(value, DictConfig):  # {minutes: 5}: Lightning takes it as it is
        return
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise UserError(f"trainer.max_time={value}: give DD:HH:MM:SS (00:00:05:00 is five minutes), HH:MM:SS, "
                        "MM:SS or seconds")
    whole = max(1, int(round(seconds)))  # Lightning counts whole seconds
    with open_dict(cfg):
        cfg.trainer.max_time = (f"{whole // 86400:02d}:{whole // 3600 % 24:02d}:{whole // 60 % 60:02d}:"
                                f"{whole % 60:02d}")


def check_training_settings(cfg: DictConfig) -> None:
    """Settings that trained nothing or failed deep inside a library without naming the key:
    trainer.max_steps=0 / max_epochs=0 ran no step, wrote no checkpoint and exited 0; a negative lr
    ("Invalid learning rate"), seed ("-1 is not in bounds") or data.max_val_items ("__len__() should
    return >= 0"); trainer.val_check_interval=0 (ZeroDivisionError). (lr = 0 stays allowed: it scores
    the starting weights through the whole training path.)"""
    for key in ("max_steps", "max_epochs"):
        if cfg.trainer.get(key) == 0:
            raise UserError(f"trainer.{key}=0 trains nothing and writes no checkpoint (-1 or null: no limit; "
                             "denoiselab-evaluate scores a model without training it)")
    lr = (cfg.model.get("optimizer") or {}).get("lr")
    if isinstance(lr, (int, float)) and lr < 0:
        raise UserError(f"model.optimizer.lr must be >= 0, got {lr}")
    budget = cfg.get("time_budget")
    if budget is not None and budget != "" and parse_duration(budget) <= 0:  # 0 was taken as no budget at all
        raise UserError(f"time_budget must be > 0 (seconds, MM:SS, HH:MM:SS or DD:HH:MM:SS; null: none), got {budget}")
    if cfg.get("seed") is not None and int(cfg.seed) < 0:
        raise UserError(f"seed must be >= 0, got {cfg.seed}")
    items = (cfg.get("data") or {}).get("max_val_items")
    if isinstance(items, int) and items < 0:
        raise UserError(f"data.max_val_items must be >= 0 (0: no validation; null: every item), got {items}")
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():  # Lightning: "No supported gpu backend"
        raise UserError(f"trainer.accelerator={accelerator}: no CUDA GPU is available here; use "
                        "trainer.accelerator=cpu (or auto)")
    interval = cfg.trainer.get("val_check_interval")
    if isinstance(interval, (int, float)) and interval <= 0:
        raise UserError(f"trainer.val_check_interval must be > 0 (steps, or a share of an epoch up to 1.0), "
                        f"got {interval}")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def refuse_another_model(resume: Path, saved: dict[str, Any] | None, built: dict[str, Any]) -> None:
    """A resume continues the same model: a checkpoint of another backbone, size or front end failed inside
    load_state_dict with a screen of size mismatches."""
    if not saved or saved.get("spec_version") != built.get("spec_version"):
        return  # a file of another format: Lightning's own load says what does not fit
    old, new = _flat(saved), _flat(built)
    differ = [k for k in sorted(set(old) | set(new), key=lambda k: (k != "net.name", k))  # the backbone first
              if k != "denoiselab_version" and old.get(k) != new.get(k)]
    if differ:
        shown = "; ".join(f"{k}: {old.get(k)} in the checkpoint, {new.get(k)} now" for k in differ[:3])
        raise UserError(f"the checkpoint to resume, {resume}, holds another model ({shown}): a resume continues "
                        "the same model, so drop the overrides that change it, or start a new run from its weights "
                        f"with init_from={resume}")


def check_clip_holds_a_window(cfg: DictConfig) -> None:
    """A training clip shorter than one STFT window failed inside torch's padding with a traceback (checked
    after init_from, whose file sets the front end)."""
    data, frontend = cfg.get("data") or {}, (cfg.model.get("frontend") or {})
    seconds, rate, n_fft = data.get("clip_seconds"), data.get("sample_rate"), frontend.get("n_fft")
    if not all(isinstance(v, (int, float)) and v > 0 for v in (seconds, rate, n_fft)):
        return  # non-positive ones are refused by name where the data module and front end are built
    if seconds * rate < n_fft:
        raise UserError(f"data.clip_seconds={seconds:g} ({int(seconds * rate)} samples at {rate} Hz) is shorter than "
                        f"one STFT window (model.frontend.n_fft={n_fft}); the shipped recipes use clips of 2-5 s")


def fit_strategy_to_accelerator(cfg: DictConfig) -> None:
    """Sync BatchNorm needs a GPU (torch's SyncBatchNorm refuses CPU modules): on CPU, e.g.
    ``trainer=ddp trainer.accelerator=cpu`` with gloo, each rank keeps its own BatchNorm statistics,
    and the log says so."""
    trainer = cfg.trainer
    if not trainer.get("sync_batchnorm"):
        return
    accelerator = str(trainer.get("accelerator", "cpu"))
    if not trains_on_cuda(accelerator):
        with open_dict(cfg):
            cfg.trainer.sync_batchnorm = False
        log.info("trainer.sync_batchnorm=true needs a GPU; on %s every DDP rank keeps its own BatchNorm "
                 "statistics (the gradients are still all-reduced)", accelerator)


def _free_mb(path: Path) -> float | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize / 2**20


def resolve_resume(cfg: DictConfig, run_dir: Path) -> Path | None:
    """The checkpoint to resume from: explicit ckpt_path; else the most advanced of last.ckpt (with
    auto_resume) and the ``hpc_ckpt_N.ckpt`` that Lightning's SLURM environment saves in the run dir
    when the requeue signal arrives (a requeued job continues from the moment it was stopped)."""
    if cfg.get("ckpt_path"):
        path = Path(str(cfg.ckpt_path)).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"ckpt_path does not exist: {path}")
        good = find_resumable(path.parent, preferred=path)
        if good is None:
            raise CheckpointError(f"ckpt_path {path} is damaged and no readable checkpoint is next to it")
        return good
    candidates = [find_resumable(run_dir / "checkpoints")] if cfg.get("auto_resume") else []
    candidates += sorted(run_dir.glob("hpc_ckpt_*.ckpt"))
    steps = {c: _global_step(c) for c in candidates if c is not None}
    steps = {c: s for c, s in steps.items() if s is not None}
    if not steps:
        return None
    good = max(steps, key=lambda c: (steps[c], c.name.startswith("hpc_ckpt_"), c.stat().st_mtime))
    log.info("resuming from %s (step %d)", good, steps[good])
    return good


def _global_step(path: Path) -> int | None:
    """The checkpoint's step, read once; None (with a warning) for an unreadable file."""
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as err:
        log.warning("%s", err)
        return None
    return int(ckpt.get("global_step", -1)) if "state_dict" in ckpt else None


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train/test one configuration; returns the final metrics (floats)."""
    run_dir = Path(cfg.paths.output_dir)
    check_output_dir(run_dir)
    normalize_max_time(cfg)
    check_training_settings(cfg)
    check_scheduler_budget(cfg)
    fit_strategy_to_accelerator(cfg)
    L.seed_everything(int(cfg.seed), workers=True)

    start = adopt_model_settings(cfg) if cfg.get("init_from") else None
    if start is None and cfg.get("task_name") == "finetune":
        log.warning("experiment=finetune without init_from trains a new model from random weights with a recipe "
                    "sized for minutes of fine-tuning; give init_from=default (the shipped model) or PATH")
    check_clip_holds_a_window(cfg)
    finetune = cfg.get("finetune") or {}
    anchor = anchor_weight(finetune)
    distill = distill_weight(finetune, has_start=start is not None)
    keep = keep_start_share(finetune, has_start=start is not None)
    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)
    loss = hydra.utils.instantiate(cfg.loss)
    model: L.LightningModule = hydra.utils.instantiate(cfg.model, loss=loss)

    resume = resolve_resume(cfg, run_dir)
    if decays_over_time(cfg.model.get("scheduler")):  # --ckpt RUN then takes the final state (model_of_run)
        model.extra_checkpoint_meta[FINAL_STATE_KEY] = True
    if start is not None:
        model.extra_checkpoint_meta["init_from"] = {**start, **({"keep_start": keep} if keep > 0 else {})}
        # a resumed run continues from its own checkpoint (restored by fit after this), but an anchored,
        # distilled or blended one needs the starting weights to pull towards or to blend with
        if resume is None or anchor > 0 or distill > 0 or keep > 0:
            load_weights(model.denoiser, str(cfg.init_from), strict=bool(cfg.get("init_strict", True)))
    elif anchor > 0 or distill > 0 or keep > 0:
        which = ("anchor pulls towards" if anchor > 0 else "distill keeps the output of" if distill > 0
                 else "keep_start blends in")
        raise UserError(f"finetune.{which} the init_from weights: give init_from=default|PATH")
    freeze(model.denoiser, [str(n) for n in finetune.get("freeze") or []])
    model.set_lr_scale(lr_scale_groups(model.denoiser, finetune.get("lr_scale")))
    if anchor > 0:
        model.set_anchor(anchor)
    if distill > 0:
        model.set_teacher(distill)
        log.info("finetune.distill=%s: the init_from model is kept as a teacher on the general-noise mixtures",
                 f"{distill:g}")
    if keep > 0:
        model.set_keep_start(keep)
        log.info("finetune.keep_start=%s: checkpoints hold %s x the trained weights + %s x the init_from ones "
                 "(validation scores the trained weights)", f"{keep:g}", f"{1 - keep:g}", f"{keep:g}")
    if resume is None and cfg.get("train", True):
        refuse_to_overwrite(run_dir)
    meta = checkpoint_meta(resume) if resume else {}
    if resume is not None:
        refuse_another_model(resume, meta.get("denoiser"), model.denoiser.spec())
    hc = HydraConfig.get() if HydraConfig.initialized() else None
    multirun = hc is not None and hc.mode == RunMode.MULTIRUN
    group = Path(hc.sweep.dir).name if multirun else None
    name = f"{Path(hc.sweep.dir).name}/{hc.sweep.subdir}" if multirun else run_dir.name
    backbone = model.denoiser.net_name if start else str(cfg.get("backbone") or model.denoiser.net_name)
    loggers = instantiate_loggers(cfg.get("logger"), run_dir, wandb_id=meta.get("wandb_id"),
                                  group=group, tags=[backbone], name=name)
    from lightning.pytorch.utilities import rank_zero_only

    wandb_ids = ([lg.experiment.id for lg in loggers if type(lg).__name__ == "WandbLogger"]
                 if rank_zero_only.rank == 0 else [])
    if wandb_ids:
        model.extra_checkpoint_meta["wandb_id"] = wandb_ids[0]
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    trainer_overrides: dict[str, Any] = {}
    if not interactive():  # a log file or pipe gets plain progress lines, not a redrawn bar
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBarBase)] + [ProgressLines()]
        trainer_overrides["enable_progress_bar"] = False
    if cfg.get("time_budget"):
        callbacks.append(InvocationBudget(parse_duration(cfg.time_budget)))
    trainer_overrides.update(epoch_limit(cfg))
    precision = resolve_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator"))
    if precision != cfg.trainer.get("precision"):
        log.info("trainer.precision=auto: %s on this machine", precision)
        trainer_overrides["precision"] = precision
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                                 **trainer_overrides)

    for lg in loggers:
        lg.log_hyperparams({"backbone": backbone, "seed": int(cfg.seed)})

    start_scores: dict[str, float] = {}
    if start is not None and resume is None and cfg.get("train", True) and cfg.get("init_validate", True):
        # the starting model on this run's own validation mixtures: the figure fine-tuning is judged against
        # (before this, a user saw where the run ended but not where it began)
        trainer.validate(model, datamodule=datamodule, verbose=False)
        start_scores = {f"init/{k}": float(v) for k, v in trainer.callback_metrics.items()
                        if k.startswith("val/") and torch.is_tensor(v) and v.numel() == 1}
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=str(resume) if resume else None, weights_only=True)
        monitor = cfg.get("monitor")
        if monitor and monitor not in trainer.callback_metrics and not trainer.interrupted:
            # Training stopped before any validation (max_steps inside the first epoch): score the
            # final weights so the summary and sweepers (Optuna) get the monitored value. (Lightning clears
            # callback_metrics when fit starts, so the init_from model's scores cannot stand in for them.)
            trainer.validate(model, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    metrics.update(start_scores)

    if cfg.get("test"):
        best = best_checkpoint(run_dir)
        test_metrics = trainer.test(model, datamodule=datamodule, ckpt_path=str(best) if best else None,
                                    weights_only=True)
        for d in test_metrics:
            metrics.update({k: float(v) for k, v in d.items()})

    if trainer.is_global_zero:
        _print_summary(trainer, cfg, metrics, run_dir, backbone)
    return metrics


def fell_below_start(metrics: dict[str, float], key: str = "val/si_sdr") -> str | None:
    """A line for a fine-tuning run that ended below its starting model on its own validation mixtures (a
    user would otherwise ship a model that is worse on their noise than the one they started from)."""
    start, end = metrics.get(f"init/{key}"), metrics.get(key)
    if start is None or end is None or end >= start:
        return None
    return (f"note: {key} ended {start - end:.2f} below the init_from model's on this run's validation mixtures: "
            "the starting model scores higher there; more of your noise (a minute or more) or a longer budget "
            "may change that")


def _print_summary(trainer: L.Trainer, cfg: DictConfig, metrics: dict[str, float], run_dir: Path,
                   backbone: str) -> None:
    """Scores in a table; the paths a user copies on lines of their own (a table would cut them)."""
    from rich.console import Console
    from rich.table import Table

    cb = trainer.checkpoint_callback
    table = Table(title=f"denoiselab-train: {backbone}", show_header=False)
    monitor = str(cfg.get("monitor"))
    if cb is not None and getattr(cb, "best_model_score", None) is not None:
        table.add_row(f"best {monitor}", f"{float(cb.best_model_score):.3f}")
    for key in ("val/si_sdr", "val/si_sdri", "val/loss", "test/si_sdr", "test/si_sdri"):
        if key in metrics:
            start = metrics.get(f"init/{key}")
            table.add_row(key, f"{metrics[key]:.3f}" + (f" (init_from: {start:.3f})" if start is not None else ""))
    table.add_row("steps", str(trainer.global_step))
    Console().print(table)
    if (warning := fell_below_start(metrics)) is not None:
        print(warning)
    best, last = best_checkpoint(run_dir), run_dir / "checkpoints" / "last.ckpt"
    print(f"run dir:         {run_dir}")
    if best is not None:
        print(f"best checkpoint: {best}")
    if last.is_file():
        print(f"last checkpoint: {last}")
        if decays_over_time(cfg.model.get("scheduler")):
            print("(the lr decayed to the end of the time budget: the last checkpoint is the model to use)")


@task_wrapper
def train(cfg: DictConfig) -> float | None:
    """Train one configuration; the monitored value is returned to sweepers (Optuna)."""
    metrics = run(cfg)
    return metrics.get(str(cfg.get("monitor")))
