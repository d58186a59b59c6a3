"""denoiselab: train, compare and use model-based audio denoisers (Lightning + Hydra).

    import denoiselab
    model = denoiselab.load_model("model.pt")      # or a denoiselab-train checkpoint; None = shipped default
    clean = model.enhance(waveform, sample_rate)   # numpy or torch, [T] or [C, T], any rate
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_model"]


def load_model(path: Any = None, device: str = "cpu", **settings: Any):
    """Load a model file or checkpoint as an Enhancer (see denoiselab.inference.Enhancer for settings)."""
    from denoiselab.inference import load_model as _load_model

    return _load_model(path, device=device, **settings)
