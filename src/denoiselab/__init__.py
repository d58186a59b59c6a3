"""denoiselab: train, compare and use model-based audio denoisers (Lightning + Hydra).

    import denoiselab
    model = denoiselab.load_model("model.pt")      # or a denoiselab-train checkpoint; None/"default" = shipped model
    clean = model.enhance(waveform, sample_rate)   # numpy or torch, [T] or [C, T], any rate

Layers (imports point down only): ``cli`` -> ``training`` -> ``evaluation`` -> ``core``. Loading and
applying a model touches ``core`` alone: no Lightning, Hydra or W&B import.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_model"]


def load_model(path: Any = None, accelerator: str = "cpu", **settings: Any):
    """Load a model file or checkpoint as an Enhancer (see denoiselab.core.enhancer.Enhancer for settings)."""
    from denoiselab.core.enhancer import load_model as _load_model

    return _load_model(path, accelerator=accelerator, **settings)
