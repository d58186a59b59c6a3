"""The core layer: audio I/O, corpora on disk, mixing, the spectral front end, backbones, the
Denoiser, model files and bounded-memory enhancement.

Imports point down only: ``cli`` -> ``training`` -> ``evaluation`` -> ``core``. Nothing here imports
Lightning, Hydra, OmegaConf or W&B, so ``denoiselab.load_model()`` and ``model.enhance()`` work in a
plain inference environment (tests/test_layers.py enforces it).
"""
