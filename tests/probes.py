"""Callbacks that tests inject into real denoiselab-train runs (``+callbacks.NAME._target_=probes.X``,
with tests/ on PYTHONPATH)."""

import os
import signal
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback


class PreemptAt(Callback):
    """For the SLURM pre-emption test: at one training step do what the cluster does, send the requeue
    signal (SIGUSR1) to the own process and then, like SLURM at the end of the grace period, SIGKILL
    it. Deterministic, unlike a signal sent from outside at a random moment."""

    def __init__(self, step: int):
        self.step = int(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR1)  # Lightning's SLURM handler saves hpc_ckpt_1.ckpt + requeues
            os.kill(os.getpid(), signal.SIGKILL)


class DumpParameters(Callback):
    """For the DDP test: every rank saves its parameters before and after training to
    DIR/rank{R}_{start,end}.pt, so the test can check that the ranks stayed identical (the gradient
    all-reduce worked) and that training moved them (lr > 0)."""

    def __init__(self, out_dir: str):
        self.out = Path(out_dir)

    def _dump(self, trainer, pl_module, when: str) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        params = {k: v.detach().cpu().clone() for k, v in pl_module.named_parameters()}
        torch.save(params, self.out / f"rank{trainer.global_rank}_{when}.pt")

    def on_fit_start(self, trainer, pl_module) -> None:
        self._dump(trainer, pl_module, "start")

    def on_fit_end(self, trainer, pl_module) -> None:
        self._dump(trainer, pl_module, "end")
