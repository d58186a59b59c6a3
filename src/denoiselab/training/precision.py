"""``trainer.precision=auto``: the fastest training precision the machine computes natively.

A time-budgeted fine-tune is bounded by its step count, so bf16 autocast pays wherever the hardware has
bf16 arithmetic (x86 CPUs with AVX512-BF16 or AMX, CUDA GPUs from Ampere on). Where it would be emulated
(older CPUs) it is slower than float32, so auto keeps float32 there. Weights, optimiser state and
checkpoints stay float32 either way (Lightning's ``*-mixed`` precisions only autocast the compute).
"""

from __future__ import annotations

import torch

AUTO = "auto"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bf16 matrix arithmetic in hardware (AVX512-BF16 or AMX tiles)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check is not None and bool(check()) for check in checks)


def trains_on_cuda(accelerator: str) -> bool:
    """Whether Lightning's ``trainer.accelerator`` puts the run on a CUDA GPU (``auto`` picks one first)."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def resolve_precision(precision: object, accelerator: object) -> object:
    """``precision`` unchanged unless it is ``auto``; then the fastest native one for ``accelerator``."""
    if str(precision) != AUTO:
        return precision
    accelerator = str(accelerator or "auto")
    if trains_on_cuda(accelerator):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.backends.mps.is_available())
    return "bf16-mixed" if on_cpu and cpu_has_native_bf16() else "32-true"
