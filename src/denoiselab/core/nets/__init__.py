"""Mask estimators: features [B, F, T] -> logits [B, F, T]. They know nothing about audio.

Each backbone registers under a short name; checkpoints store that name and the constructor
arguments, so a model is rebuilt from a file without importing arbitrary code paths.
"""

from denoiselab.core.nets import conformer, crn, dpcrn, lstm, resnet, unet  # noqa: F401  (registration side effects)
from denoiselab.core.nets.registry import NETS, build_net, net_name, register

__all__ = ["NETS", "build_net", "net_name", "register"]
