"""What a trained model costs: parameters, multiply-accumulates per second of audio, real-time factor on one
thread, and (for a training checkpoint) its step and training minutes. Shared by the benchmark tables."""

from __future__ import annotations

import math
import time
from pathlib import Path


def macs_per_second(denoiser, sample_rate: int = 16000) -> float:
    """MACs of one second of audio through the whole Denoiser: torch's FLOP counter for matmuls and convs
    (2 FLOPs = 1 MAC) plus the recurrent layers, which it does not count, from their sizes."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    rnn_macs = 0

    def count_rnn(module: nn.RNNBase, args, _out) -> None:
        nonlocal rnn_macs
        x = args[0]
        steps_times_batch = x.shape[0] * x.shape[1]  # (time, batch) or (batch, time): the product is the same
        gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
        directions = 2 if module.bidirectional else 1
        width = module.input_size
        for _ in range(module.num_layers):
            per_step = gates * module.hidden_size * (width + module.hidden_size)
            rnn_macs += steps_times_batch * directions * per_step
            width = module.hidden_size * directions

    hooks = [m.register_forward_hook(count_rnn) for m in denoiser.modules() if isinstance(m, nn.RNNBase)]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            denoiser.enhance(torch.zeros(1, sample_rate).normal_(generator=torch.Generator().manual_seed(0)) * 0.1)
    finally:
        for h in hooks:
            h.remove()
    return counter.get_total_flops() / 2 + rnn_macs


def model_facts(ckpt: Path, macs: bool = False) -> dict:
    """params, rtf (one thread, 30 s of noise through the Enhancer), optionally macs_per_s; steps and
    train_min for a .ckpt."""
    import numpy as np
    import torch

    from denoiselab.core.enhancer import Enhancer
    from denoiselab.core.model_files import load_denoiser

    torch.set_num_threads(1)
    den = load_denoiser(ckpt)
    enh = Enhancer(den)
    x = (np.random.default_rng(0).standard_normal(30 * 16000) * 0.1).astype(np.float32)
    enh.enhance(x[:16000], 16000)
    t0 = time.perf_counter()
    enh.enhance(x, 16000)
    facts = {"params": den.num_parameters(), "rtf": (time.perf_counter() - t0) / 30}
    if macs:
        facts["macs_per_s"] = macs_per_second(den.eval())
    if Path(ckpt).suffix == ".ckpt":
        state = torch.load(ckpt, weights_only=True, map_location="cpu")
        facts["steps"] = int(state["global_step"])
        timer = state.get("callbacks", {}).get("Timer", {}).get("time_elapsed", {})
        facts["train_min"] = timer.get("train", math.nan) / 60
    return facts
