"""``trainer.precision=auto``: the training precision measured fastest on this kind of machine.

A time-budgeted fine-tune is bounded by its step count, so bf16 autocast pays where the hardware does
bf16 matrix arithmetic fast: x86 CPUs with AMX tiles (38 % more fine-tuning steps in 5 minutes,
benchmarks/results/tune_precision_bf16.md) and CUDA GPUs from Ampere on. A CPU with AVX512-BF16 but no AMX
lost (10-16 % fewer steps than float32, tune_precision_avx512bf16.md), and one without either
emulates bf16, so auto keeps float32 on both. Weights, optimiser state and checkpoints stay float32 either
way (Lightning's ``*-mixed`` precisions only autocast the compute).
"""

from __future__ import annotations

import torch

AUTO = "auto"


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has AMX tiles, the only CPU bf16 measured faster than float32 here (AVX512-BF16
    alone was not)."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return check is not None and bool(check())


def trains_on_cuda(accelerator: str) -> bool:
    """Whether Lightning's ``trainer.accelerator`` puts the run on a CUDA GPU (``auto`` picks one first)."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def resolve_precision(precision: object, accelerator: object) -> object:
    """``precision`` unchanged unless it is ``auto``; then the fastest one measured for ``accelerator``."""
    if str(precision) != AUTO:
        return precision
    accelerator = str(accelerator or "auto")
    if trains_on_cuda(accelerator):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.backends.mps.is_available())
    return "bf16-mixed" if on_cpu and cpu_has_fast_bf16() else "32-true"
