"""Name -> class registry for backbones."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

NETS: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        NETS[name] = cls
        cls.registry_name = name
        return cls
    return wrap


def net_name(cls: type) -> str:
    name = getattr(cls, "registry_name", None)
    if name is None or NETS.get(name) is not cls:
        raise ValueError(f"{cls.__name__} is not a registered backbone; use denoiselab.core.nets.register")
    return name


def build_net(name: str, n_freqs: int, **kwargs: Any) -> nn.Module:
    if name not in NETS:
        raise ValueError(f"unknown backbone {name!r}; allowed: {', '.join(sorted(NETS))}")
    return NETS[name](n_freqs=n_freqs, **kwargs)
