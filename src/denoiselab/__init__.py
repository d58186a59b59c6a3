"""denoiselab: train, compare and use model-based audio denoisers (Lightning + Hydra)."""

__version__ = "0.1.0"
