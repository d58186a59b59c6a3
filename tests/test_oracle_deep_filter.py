"""benchmarks/oracle_deep_filter.py and core.processors.past_frames: the least-squares filter over past frames
that oracle_deep_filter.md rests on, and the frames the deep filter weighs (a fit that missed a filter the data
follows exactly, or looked at the wrong frames, would make that ceiling meaningless)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from denoiselab.core.processors import past_frames


def _oracle():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "oracle_deep_filter.py"
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("oracle_deep_filter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_oracle_recovers_a_filter_over_past_frames_on_its_bins_only():
    oracle = _oracle()
    gen = torch.Generator().manual_seed(0)
    noisy = torch.complex(torch.randn(40, 123, generator=gen, dtype=torch.float64),
                          torch.randn(40, 123, generator=gen, dtype=torch.float64))
    taps = torch.complex(torch.randn(40, 3, generator=gen, dtype=torch.float64),
                         torch.randn(40, 3, generator=gen, dtype=torch.float64))
    past = past_frames(noisy, 3)                       # S(k, t - i), zeros before the start
    assert torch.equal(past[:, 5, 2], noisy[:, 3]) and torch.equal(past[:, 1, 2], torch.zeros(40, dtype=noisy.dtype))
    target = (past * taps[:, None, :]).sum(-1)                # a target that follows a 3-tap filter exactly
    out = oracle.oracle_filter(noisy, target, order=3, bins=25)
    assert torch.allclose(out[:25], target[:25], atol=1e-9)   # found on the bins it may use...
    assert torch.equal(out[25:], torch.zeros_like(out[25:]))  # ...and nothing above them
    short = oracle.oracle_filter(noisy, target, order=2, bins=25)  # one tap too few cannot reproduce it
    assert (short[:25] - target[:25]).abs().pow(2).mean() > 0.5 * taps[:25, 2].abs().pow(2).mean()
