"""Training callbacks: perceptual quality scores and media during validation, the newest-state
checkpoint, and the run's own metrics file."""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch

from denoiselab.core.files import RUN_METRICS
from denoiselab.evaluation import metrics as M

log = logging.getLogger(__name__)


class QualityCallback(L.Callback):
    """Every ``every_n_epochs`` validations, score the first ``max_items`` validation mixtures.

    Logs ``val/<metric>`` and ``val/<metric>_noisy`` (e.g. val/pesq_wb) to every logger, so a
    ModelCheckpoint can monitor them (set its every_n_epochs to the same value). On rank 0 it
    also logs ``n_audio`` examples (noisy / denoised / clean) and a spectrogram PNG to W&B and
    TensorBoard. PESQ/STOI run in ``num_workers`` processes; DNSMOS is optional (slow on CPU).
    """

    def __init__(self, every_n_epochs: int = 5, max_items: int = 8, metrics: Sequence[str] = ("pesq_wb", "stoi"),
                 num_workers: int = 0, n_audio: int = 2, log_media: bool = True):
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        unknown = set(metrics) - set(M.ALL_METRICS)
        if unknown:
            raise ValueError(f"unknown metric(s) {sorted(unknown)}; allowed: {', '.join(M.ALL_METRICS)}")
        self.every, self.max_items, self.metrics = int(every_n_epochs), int(max_items), list(metrics)
        self.num_workers, self.n_audio, self.log_media = int(num_workers), int(n_audio), log_media
        self._items: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def _active(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every == 0

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._items = []

    @torch.no_grad()
    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self._active(trainer) or len(self._items) >= self.max_items:
            return
        take = self.max_items - len(self._items)
        noisy, clean = batch["noisy"][:take], batch["clean"][:take]
        enhanced = pl_module.denoiser.enhance(noisy)
        for n, e, c in zip(noisy.float().cpu().numpy(), enhanced.float().cpu().numpy(), clean.float().cpu().numpy()):
            self._items.append((n, e, c))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not self._active(trainer) or not self._items:
            return
        sr = pl_module.denoiser.sample_rate
        jobs = [(e, sr, c) for _, e, c in self._items] + [(n, sr, c) for n, _, c in self._items]
        scores = M.score_many(jobs, self.metrics, num_workers=self.num_workers)
        k = len(self._items)
        for m in self.metrics:
            enh = _nanmean([s[m] for s in scores[:k]])
            base = _nanmean([s[m] for s in scores[k:]])
            pl_module.log(f"val/{m}", enh, sync_dist=True)
            pl_module.log(f"val/{m}_noisy", base, sync_dist=True)
        if self.log_media and trainer.is_global_zero:
            self._log_media(trainer, sr)

    def _log_media(self, trainer: L.Trainer, sr: int) -> None:
        from denoiselab.evaluation.report import plot_spectrograms

        step = trainer.global_step
        for i, (noisy, enhanced, clean) in enumerate(self._items[: self.n_audio]):
            with tempfile.TemporaryDirectory() as tmp:
                png = plot_spectrograms({"noisy": noisy, "denoised": enhanced, "clean": clean}, sr,
                                        Path(tmp) / "spec.png", f"validation example {i} (step {step})")
                image = (plt_imread(png) * 255).astype(np.uint8)
            for lg in trainer.loggers:
                kind = type(lg).__name__
                try:
                    if kind == "WandbLogger":
                        lg.log_audio(key=f"val_audio/example_{i}", audios=[noisy, enhanced, clean],
                                     sample_rate=[sr] * 3, caption=["noisy", "denoised", "clean"], step=step)
                        lg.log_image(key=f"val_spectrogram/example_{i}", images=[image], step=step)
                    elif kind == "TensorBoardLogger":
                        exp = lg.experiment
                        for name, wav in (("noisy", noisy), ("denoised", enhanced), ("clean", clean)):
                            exp.add_audio(f"val_audio/example_{i}/{name}", torch.from_numpy(_peak(wav))[None],
                                          step, sample_rate=sr)
                        exp.add_image(f"val_spectrogram/example_{i}", image, step, dataformats="HWC")
                except Exception as exc:  # media must never stop training
                    log.warning("could not log media to %s: %s", kind, exc)


def plt_imread(path: Path) -> np.ndarray:
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    return img[..., :3] if img.ndim == 3 else img


def _peak(x: np.ndarray) -> np.ndarray:
    m = float(np.abs(x).max()) if x.size else 0.0
    return (x / m * 0.99 if m > 1.0 else x).astype(np.float32)


def _nanmean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


class LastCheckpoint(L.pytorch.callbacks.ModelCheckpoint):
    """checkpoints/last.ckpt: the newest state, written at every validation and when training ends.

    Why not ModelCheckpoint(save_last=True): since Lightning 2.5 it rewrites last.ckpt only in a step
    that also saved a top-k file, so last.ckpt goes stale once the monitored metric stops improving,
    and a resumed run would silently restart from an older state.
    """

    def __init__(self, dirpath: str, every_n_train_steps: int | None = None):
        super().__init__(dirpath=dirpath, filename="last", monitor=None, save_top_k=1, enable_version_counter=False,
                         every_n_train_steps=every_n_train_steps, save_on_train_epoch_end=False)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the steps after the last validation (max_steps inside an epoch, or no validation at all)
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_none_monitor_checkpoint(trainer, self._monitor_candidates(trainer))


class RunMetricsFile(L.Callback):
    """``RUN/metrics.jsonl``: one JSON line per validation (step, epoch, seconds trained in this
    invocation, every scalar metric), plus a start line (parameters, backbone, the step it resumed
    from) and an end line. Written by rank 0 whatever logger runs (CSV, TensorBoard, W&B or none),
    so ``denoiselab-compare`` can rank any sweep; appended to, so a resumed run adds its lines.
    A validation before training (a fine-tuning run scoring its ``init_from`` model) is an
    ``init_validation`` line: what the run started from, not one of its own results; one after it (a
    run that stopped before validating scores its final weights) is one of the run's validations."""

    def __init__(self, run_dir: str):
        self.path = Path(run_dir) / RUN_METRICS
        self._t0 = time.monotonic()
        self._fitting = False

    def _write(self, trainer: L.Trainer, record: dict[str, Any]) -> None:
        if not trainer.is_global_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0, self._fitting = time.monotonic(), True
        den = getattr(pl_module, "denoiser", None)
        self._write(trainer, {"event": "start", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                              "step": int(trainer.global_step),
                              "params": den.num_parameters() if den is not None else None,
                              "backbone": den.net_name if den is not None else None})

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        values = {k: float(v) for k, v in trainer.callback_metrics.items()
                  if isinstance(v, torch.Tensor) and v.numel() == 1 and math.isfinite(float(v))}
        if trainer.state.fn != "fit" and not self._fitting:
            self._write(trainer, {"event": "init_validation", "step": int(trainer.global_step), **values})
            return
        self._write(trainer, {"event": "validation", "step": int(trainer.global_step),
                              "epoch": int(trainer.current_epoch),
                              "seconds": round(time.monotonic() - self._t0, 2), **values})

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, {"event": "end", "step": int(trainer.global_step),
                              "seconds": round(time.monotonic() - self._t0, 2)})


class ProgressBar(L.pytorch.callbacks.RichProgressBar):
    """Lightning's rich bar, without its "Epoch 0/-2" when training is bounded by steps or time."""

    def _get_train_description(self, current_epoch: int) -> str:
        trainer = self.trainer
        if trainer.max_epochs is not None and trainer.max_epochs > 0:
            return super()._get_train_description(current_epoch)
        budget = f", step budget {trainer.max_steps}" if trainer.max_steps and trainer.max_steps > 0 else ""
        return f"Epoch {current_epoch}{budget}"


class ProgressLines(L.Callback):
    """A plain progress line at least every ``interval`` seconds (step, rate, time left, loss) and one
    per validation, through logging: what a log file or a redirected console gets instead of bars."""

    def __init__(self, interval: float | None = None):
        from denoiselab.core.progress import interval_seconds

        self.interval = interval_seconds() if interval is None else float(interval)
        self._t0 = self._last = time.monotonic()
        self._step0 = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = self._last = time.monotonic()
        self._step0 = int(trainer.global_step)
        budget = f"{trainer.max_steps} steps" if trainer.max_steps and trainer.max_steps > 0 else "no step budget"
        log.info("train: starting at step %d (%s)", trainer.global_step, budget)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.monotonic()
        if now - self._last < self.interval or not trainer.is_global_zero:
            return
        self._last = now
        from denoiselab.core.progress import format_seconds

        step, elapsed = int(trainer.global_step), now - self._t0
        rate = (step - self._step0) / elapsed if elapsed > 0 else 0.0
        left = ""
        if trainer.max_steps and trainer.max_steps > 0 and rate > 0:
            left = f", about {format_seconds((trainer.max_steps - step) / rate)} left"
        loss = trainer.callback_metrics.get("train/loss_step")
        loss_text = f", loss {float(loss):.4f}" if loss is not None else ""
        of = f"/{trainer.max_steps}" if trainer.max_steps and trainer.max_steps > 0 else ""
        log.info("train: step %d%s, %.2f steps/s, %s elapsed%s%s", step, of, rate, format_seconds(elapsed), left,
                 loss_text)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        shown = {k: float(v) for k, v in trainer.callback_metrics.items()
                 if k.startswith("val/") and isinstance(v, torch.Tensor) and v.numel() == 1}
        if shown:
            log.info("validation at step %d: %s", trainer.global_step,
                     ", ".join(f"{k} {v:.3f}" for k, v in sorted(shown.items())))


class InvocationBudget(L.Callback):
    """Stop this invocation after ``seconds`` of training (``time_budget=``). Lightning's
    ``trainer.max_time`` counts the time of earlier invocations too (its timer is restored on resume);
    this one starts from zero every time, e.g. "fine-tune for five more minutes"."""

    def __init__(self, seconds: float):
        if seconds <= 0:
            raise ValueError(f"time_budget must be > 0 seconds, got {seconds}")
        self.seconds = float(seconds)
        self._t0 = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if time.monotonic() - self._t0 >= self.seconds and not trainer.should_stop:
            trainer.should_stop = True
            log.info("time_budget of %.0f s reached at step %d: stopping", self.seconds, trainer.global_step)


def parse_duration(value: str | float | int) -> float:
    """Seconds from 90, "90", "00:00:01:30" (DD:HH:MM:SS, Lightning's max_time format) or "1:30"."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    if text.startswith("-"):  # "-00:00:01" is minus one second, not the 1 s of its last field
        return -parse_duration(text[1:])
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise ValueError(f"time_budget={value!r}: give seconds or DD:HH:MM:SS") from None
    scale = (86400.0, 3600.0, 60.0, 1.0)[-len(parts):]
    return sum(p * s for p, s in zip(parts, scale))
