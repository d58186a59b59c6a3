"""LightningModule around the Denoiser: losses, SI-SDR logging, optimisers, checkpoint metadata."""

from __future__ import annotations

import copy
import functools
import logging
from typing import Any, Callable

import lightning as L
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from denoiselab.core.checkpoints import CKPT_KEY
from denoiselab.core.denoiser import Denoiser
from denoiselab.core.processors import Prediction, safe_abs
from denoiselab.core.spectral import SpectralFrontEnd
from denoiselab.training.finetune import blend_weights
from denoiselab.training.losses import si_sdr
from denoiselab.training.schedules import NO_TIME_BUDGET, WarmupCosineByTime, invocation_time_left

log = logging.getLogger(__name__)

__all__ = ["CKPT_KEY", "TRAINED_STATE_KEY", "DenoiseModule", "plain_settings"]

#: Checkpoint key of the weights as trained when the state_dict holds a blend (finetune.keep_start).
TRAINED_STATE_KEY = "denoiselab_trained_state"


def plain_settings(value: Any) -> Any:
    """Config containers (and partials holding them) as plain Python: the Denoiser stores its settings
    in model files that load with weights_only, so they must be dicts, lists and scalars."""
    if isinstance(value, functools.partial):
        return functools.partial(value.func, *value.args, **plain_settings(dict(value.keywords)))
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {k: plain_settings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_settings(v) for v in value]
    return value


class DenoiseModule(L.LightningModule):
    """Trains a Denoiser on batches {noisy, clean, noise} of waveforms [B, T].

    optimizer / scheduler are partials (Hydra ``_partial_: true``) completed here with the
    parameters / optimizer. Logged: train/loss, val/loss, val/si_sdr, val/si_sdr_noisy,
    val/si_sdri (improvement over the noisy input), and the same under test/.
    """

    def __init__(self, net: Callable[..., nn.Module] | dict, frontend: SpectralFrontEnd | dict,
                 loss: nn.Module, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., Any] | None = None, scheduler_interval: str = "epoch",
                 scheduler_monitor: str = "val/loss", sample_rate: int = 16000, head: str = "mask",
                 compile: bool = False, mask_processor: str | dict | None = None, channels_last: bool = False):
        super().__init__()
        if not isinstance(frontend, SpectralFrontEnd):
            frontend = plain_settings(frontend)
        self.denoiser = Denoiser(net=plain_settings(net), frontend=frontend, sample_rate=sample_rate, head=head,
                                 processor=plain_settings(mask_processor))
        self.loss_fn = loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval, self.scheduler_monitor = scheduler_interval, scheduler_monitor
        self.compile_net = compile
        self.channels_last = channels_last
        self.extra_checkpoint_meta: dict[str, Any] = {}
        self.anchor_weight = 0.0
        self._anchor: list[tuple[nn.Parameter, torch.Tensor]] = []
        self.distill_weight = 0.0
        self._teacher: list[Denoiser] = []  # in a list: not a submodule, so not in the state dict
        self.keep_start = 0.0
        self._start_state: dict[str, torch.Tensor] = {}
        self._lr_groups: list[tuple[list[nn.Parameter], float]] = []

    # ------------------------------------------------------------------ steps
    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        return self.denoiser.enhance(noisy)

    def _shared_step(self, batch: dict, stage: str) -> tuple[torch.Tensor, Prediction]:
        noisy, clean, noise = batch["noisy"], batch["clean"], batch["noise"]
        out = self.denoiser(noisy, update_norm=(stage == "train"))
        fe = self.denoiser.frontend
        clean_spec, noise_spec = fe.stft(clean), fe.stft(noise)
        target = {"clean": clean, "noise": noise, "clean_spec": clean_spec, "clean_mag": clean_spec.abs(),
                  "noise_mag": noise_spec.abs()}
        loss = self.loss_fn(out, target)
        bs = noisy.shape[0]
        sync = stage != "train"
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=bs, sync_dist=sync,
                 on_step=stage == "train", on_epoch=True)
        for name, value in getattr(self.loss_fn, "last_terms", {}).items():
            self.log(f"{stage}/loss_{name}", value, batch_size=bs, sync_dist=sync)
        if stage != "train":
            with torch.no_grad():
                enh = si_sdr(out.enhanced.float(), clean.float()).mean()
                base = si_sdr(noisy.float(), clean.float()).mean()
            self.log(f"{stage}/si_sdr", enh, prog_bar=True, batch_size=bs, sync_dist=True)
            self.log(f"{stage}/si_sdr_noisy", base, batch_size=bs, sync_dist=True)
            self.log(f"{stage}/si_sdri", enh - base, prog_bar=True, batch_size=bs, sync_dist=True)
        return loss, out

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, out = self._shared_step(batch, "train")
        bs = batch["noisy"].shape[0]
        if self.anchor_weight > 0:
            pull = self.anchor_distance()
            self.log("train/loss_anchor", pull, batch_size=bs)
            loss = loss + self.anchor_weight * pull
        if self.distill_weight > 0:
            gap = self.teacher_distance(out, batch)
            self.log("train/loss_distill", gap, batch_size=bs)
            loss = loss + self.distill_weight * gap
        return loss

    def set_teacher(self, weight: float) -> None:
        """Keep a frozen copy of the current model as a teacher (learning without forgetting): on the
        mixtures of general noise (batch["general"]) the loss gains ``weight`` times the distance of the
        model's output from the teacher's, so the model keeps doing there what it did before fine-tuning
        rather than learning that noise anew. Outside the state dict: checkpoints and model files are
        unchanged."""
        self.distill_weight = float(weight)
        self._teacher = [copy.deepcopy(self.denoiser).eval().requires_grad_(False)] if weight > 0 else []

    def teacher_distance(self, out: Prediction, batch: dict, power: float = 0.3,
                         eps: float = 1e-8) -> torch.Tensor:
        """Mean squared difference of the compressed enhanced magnitudes (the compressed loss's scale)
        of the model and the teacher on the batch's general-noise mixtures; 0 when it has none."""
        general = batch.get("general")
        if not self._teacher or general is None or not bool(general.any()):
            return torch.zeros((), device=out.enhanced_spec.device)
        teacher, pick = self._teacher[0], general.bool()
        if next(teacher.parameters()).device != batch["noisy"].device:
            teacher.to(batch["noisy"].device)
        with torch.no_grad():
            ref = teacher.predict_spectrum(batch["noisy"][pick], update_norm=False).enhanced_mag
        est = safe_abs(out.enhanced_spec[pick])
        return ((est + eps).pow(power) - (ref + eps).pow(power)).pow(2).mean()

    def set_anchor(self, weight: float) -> None:
        """Keep the current trainable weights as the point fine-tuning is pulled back to (L2-SP: a guard
        against forgetting that needs no data): the loss gains ``weight`` times their mean squared distance
        from it. Held outside the state dict, so checkpoints and model files are unchanged; tied to the
        parameter objects, so a compiled net (whose names change) and a restored checkpoint keep it."""
        self.anchor_weight = float(weight)
        self._anchor = [(p, p.detach().clone()) for p in self.denoiser.parameters() if p.requires_grad] \
            if weight > 0 else []

    def anchor_distance(self) -> torch.Tensor:
        """Mean squared distance of the anchored parameters from their starting values (0 when none are)."""
        if not self._anchor:
            return torch.zeros((), device=self.device)
        total, count = torch.zeros((), device=self._anchor[0][0].device), 0
        for i, (p, start) in enumerate(self._anchor):
            if start.device != p.device:
                start = start.to(p.device)
                self._anchor[i] = (p, start)
            total = total + (p - start).float().square().sum()
            count += p.numel()
        return total / count

    def set_keep_start(self, share: float) -> None:
        """Keep ``share`` of the current (starting) weights in every checkpoint this run writes: its
        ``state_dict`` holds ``(1 - share) x trained + share x start`` (weight-space ensembling, WiSE-FT),
        so every reader of the checkpoint (evaluate, enhance, export, a later init_from) gets the blend,
        while the trained weights ride along under TRAINED_STATE_KEY for a resumed run to continue from.
        Floating tensors are blended (weights and normalisation statistics alike), counters are not."""
        self.keep_start = float(share)
        self._start_state = {k: v.detach().clone() for k, v in self.denoiser.state_dict().items()
                             if v.is_floating_point()} if share > 0 else {}

    def blended_state(self, trained: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A module state dict with the denoiser's floating tensors moved ``keep_start`` of the way back
        to the starting ones (a torch.compile'd net's names map back to the plain ones)."""
        plain = {key: key[len("denoiser."):].replace("net._orig_mod.", "net.") for key in trained
                 if key.startswith("denoiser.")}
        start = {key: self._start_state[name] for key, name in plain.items() if name in self._start_state}
        return blend_weights(trained, start, self.keep_start)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self.denoiser.enhance(batch["noisy"])

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        if self.channels_last:
            # oneDNN's convolutions run faster on NHWC weights on some CPUs (a whole fine-tune: 11-16 % more steps
            # on a 2-core Xeon, benchmarks/results/channels_last.md); the math and the saved names are the same
            self.denoiser.net.to(memory_format=torch.channels_last)
        if self.compile_net:
            self.denoiser.net = torch.compile(self.denoiser.net)

    def on_fit_start(self) -> None:
        n = self.denoiser.num_parameters()
        log.info("Backbone %s: %s parameters", self.denoiser.net_name, f"{n:,}")
        for lg in self.loggers:
            lg.log_hyperparams({"model/params": n, "model/net": self.denoiser.net_name})

    def on_train_start(self) -> None:
        """A schedule over wall-clock time (model/scheduler=cosine_time) decays over what this invocation
        has left: ``time_budget`` or the rest of ``trainer.max_time``, whichever ends first."""
        timed = [s for s in self._schedulers() if isinstance(s, WarmupCosineByTime)]
        if not timed:
            return
        left = invocation_time_left(self.trainer)
        if left is None:
            raise ValueError(NO_TIME_BUDGET)  # train.py refuses it before building; this guards other callers
        for sched in timed:
            sched.start_clock(left)
        log.info("lr decays to %.3g x over the %.0f s this run has left", timed[0].final_factor, left)

    def _schedulers(self) -> list[Any]:
        scheds = self.lr_schedulers()
        return [] if scheds is None else list(scheds) if isinstance(scheds, list) else [scheds]

    def set_lr_scale(self, groups: list[tuple[list[nn.Parameter], float]]) -> None:
        """Train these parameters at their factor times the optimiser's lr (finetune.lr_scale); tied to the
        parameter objects, so a compiled net keeps the groups."""
        self._lr_groups = groups

    def _param_groups(self) -> list[dict[str, Any]]:
        scaled = {id(p) for ps, _ in self._lr_groups for p in ps}
        rest = [p for p in self.parameters() if id(p) not in scaled]
        return ([{"params": rest, "lr_factor": 1.0}] if rest else []) + \
            [{"params": ps, "lr_factor": f} for ps, f in self._lr_groups]

    def configure_optimizers(self) -> Any:
        if not self._lr_groups:
            optimizer = self.optimizer_factory(params=self.parameters())
        else:  # the factor scales the lr the optimiser was given, before a scheduler takes it as its base
            optimizer = self.optimizer_factory(params=self._param_groups())
            for group in optimizer.param_groups:
                group["lr"] *= group.pop("lr_factor")
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval,
                                                         "monitor": self.scheduler_monitor, "frequency": 1}}

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CKPT_KEY] = {"denoiser": self.denoiser.spec(), **self.extra_checkpoint_meta}
        if self._start_state:
            checkpoint[TRAINED_STATE_KEY] = checkpoint["state_dict"]
            checkpoint["state_dict"] = self.blended_state(checkpoint["state_dict"])

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.get(CKPT_KEY, {})
        self.extra_checkpoint_meta.update({k: v for k, v in meta.items() if k != "denoiser"})
        # Lightning loads checkpoint["state_dict"] after this hook: a resumed run continues from the weights
        # it trained, not from the blend it saved (testing or predicting from the file scores the blend)
        trainer = self._trainer
        if TRAINED_STATE_KEY in checkpoint and trainer is not None and trainer.state.fn == "fit":
            checkpoint["state_dict"] = checkpoint[TRAINED_STATE_KEY]
