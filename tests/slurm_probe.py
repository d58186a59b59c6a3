"""A callback for the SLURM pre-emption test: at one training step it does what the cluster does,
sends the requeue signal (SIGUSR1) to its own process and then, like SLURM at the end of the grace
period, SIGKILLs it. Deterministic, unlike a signal sent from outside at a random moment."""

import os
import signal

from lightning.pytorch.callbacks import Callback


class PreemptAt(Callback):
    def __init__(self, step: int):
        self.step = int(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR1)  # Lightning's SLURM handler saves hpc_ckpt_1.ckpt + requeues
            os.kill(os.getpid(), signal.SIGKILL)
