"""Start training from trained weights (``init_from=default|PATH``): fine-tuning on a lab's own noise.

The backbone, front end, head and rate come from the file, so a config default never fights the
weights; an override that contradicts the file is refused naming the key. Weights and the feature-
normalisation statistics are loaded, the optimiser and the schedule start fresh. A load that does
not cover every tensor (a different model part) says what was loaded and is refused unless
``init_strict=false``; tensors whose shapes differ are never loaded, except one: a noise-mask file started as
a deep filter (``model/mask_processor=deep_filter``) grows its output layer, the mask as channel 0 and the
filter taps at zero, so training starts from the file's output (to float rounding).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig, open_dict

from denoiselab.core.errors import UserError
from denoiselab.core.files import sha1_of
from denoiselab.core.model_files import read_model, resolve_model_path
from denoiselab.training.data.datamodule import uses_builtin_pool

log = logging.getLogger(__name__)


def _user_overrides() -> list[tuple[str, str]]:
    """(key, value) of the command-line overrides of this run (Hydra's task overrides)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not HydraConfig.initialized():
        return []
    parsed = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    return [(o.key_or_group, o.value()) for o in parsed if not o.is_sweep_override()]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def adopt_model_settings(cfg: DictConfig) -> dict[str, Any]:
    """Make cfg.model describe the init_from file's model; refuse contradicting overrides. Returns
    what to record about the starting point."""
    path = resolve_model_path(cfg.init_from)
    spec, _, extra = read_model(path)
    net, front = spec["net"], spec["frontend"]
    for key, value in _user_overrides():
        fixed = None
        if key == "model/net" and value != net["name"]:
            fixed = net["name"]
        elif key.startswith("model.net.") and key[10:] in net["kwargs"] and not _same(value, net["kwargs"][key[10:]]):
            fixed = net["kwargs"][key[10:]]
        elif key.startswith("model.frontend.") and key[15:] in front and not _same(value, front[key[15:]]):
            fixed = front[key[15:]]
        elif key == "model.head" and value != spec["head"]:
            fixed = spec["head"]
        elif key == "model/mask_processor" and value != processor_of(spec) and not can_grow(spec, value):
            fixed = processor_of(spec)
        elif key == "data.sample_rate" and not _same(value, spec["sample_rate"]):
            fixed = spec["sample_rate"]
        if fixed is not None:
            raise UserError(f"{key}={value} conflicts with init_from={cfg.init_from} (its {key.split('/')[-1]} is "
                            f"{fixed}): the model's settings come from the file; drop {key}")
    with open_dict(cfg):
        cfg.model.net = {"name": net["name"], "kwargs": net["kwargs"]}
        for k, v in front.items():
            cfg.model.frontend[k] = v
        cfg.model.head = spec["head"]
        grown = can_grow(spec, cfg.model.mask_processor.get("name"))
        if not grown:
            cfg.model.mask_processor = spec.get("processor") or {"name": "noise_subtract", "kwargs": {}}
        cfg.data.sample_rate = spec["sample_rate"]
    if grown:
        log.info("init_from %s: its noise mask becomes channel 0 of model/mask_processor=%s; the added channels "
                 "start at zero, so training starts from the file's output (to float rounding)", path,
                 cfg.model.mask_processor.name)
    return {"path": str(path), "sha1": sha1_of(path), "net": net["name"],
            **({"grown_to": str(cfg.model.mask_processor.name)} if grown else {}),
            **({"made_from": extra["init_from"]} if "init_from" in extra else {})}


def processor_of(spec: dict[str, Any]) -> str:
    """The mask processor a model file was trained with (files without one: noise_subtract)."""
    return str((spec.get("processor") or {}).get("name", "noise_subtract"))


#: processors whose channel 0 is noise_subtract's noise mask (head=mask) and whose other channels are neutral at
#: zero, so a noise_subtract file can start them: its output layer grows by zero rows (grow_output_layer)
GROWS_FROM_MASK = ("deep_filter",)


def can_grow(spec: dict[str, Any], processor: str | None) -> bool:
    return processor in GROWS_FROM_MASK and processor_of(spec) == "noise_subtract" and spec["head"] == "mask"


def grow_output_layer(key: str, file_tensor: torch.Tensor, own: torch.Tensor) -> torch.Tensor | None:
    """The file's one-channel output layer (``net.out``) as the first channel of a wider one, the other
    channels zero; None where ``key`` is not such a layer. Channel-major layouts only (the 2-D nets' 1x1
    convolution rows, the frame-wise nets' [C*F] rows, as blocks.per_channel reads them)."""
    if not key.startswith("net.out.") or own.dim() != file_tensor.dim() or own.shape[1:] != file_tensor.shape[1:]:
        return None
    rows = file_tensor.shape[0]
    if own.shape[0] <= rows or own.shape[0] % rows:
        return None
    grown = torch.zeros_like(own)
    grown[:rows] = file_tensor.to(own.dtype)
    return grown


def load_weights(denoiser: torch.nn.Module, path: str, strict: bool = True) -> dict[str, int]:
    """Copy the file's tensors into ``denoiser``; returns counts of loaded/missing/unexpected/mismatched.
    A noise_subtract file loaded into a deep_filter model (can_grow) fills the wider output layer's first
    channel (grow_output_layer)."""
    spec, state, _ = read_model(path)
    own = denoiser.state_dict()
    other_shape = [k for k, v in state.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    grown = {}
    if can_grow(spec, getattr(getattr(denoiser, "processor", None), "registry_name", None)):
        grown = {k: g for k in other_shape if (g := grow_output_layer(k, state[k], own[k])) is not None}
    mismatched = [k for k in other_shape if k not in grown]
    loadable = {**{k: v.to(own[k].dtype) for k, v in state.items() if k in own and k not in other_shape}, **grown}
    missing = [k for k in own if k not in loadable]
    unexpected = [k for k in state if k not in own]
    if (mismatched or missing or unexpected) and strict:
        parts = [f"{len(x)} {what} (e.g. {x[0]})" for x, what in ((missing, "tensors missing from the file"),
                 (unexpected, "tensors the model lacks"), (mismatched, "tensors of another shape")) if x]
        raise UserError(f"init_from={path} does not fit this model: {'; '.join(parts)}; pass init_strict=false to "
                        "load what fits (tensors of another shape are never loaded)")
    denoiser.load_state_dict({**own, **loadable})
    counts = {"loaded": len(loadable), "missing": len(missing), "unexpected": len(unexpected),
              "mismatched": len(mismatched)}
    log.info("init_from %s: loaded %d of %d tensors (missing %d, not used %d, other shape %d)", path,
             len(loadable), len(own), len(missing), len(unexpected), len(mismatched))
    return counts


def anchor_weight(finetune: Any) -> float:
    """finetune.anchor as a number; refused below 0."""
    weight = float(finetune.get("anchor") or 0.0)
    if weight < 0:
        raise UserError(f"finetune.anchor must be 0 (off) or more, got {weight}")
    return weight


def _auto_or_number(finetune: Any, key: str, auto: float, allowed: str) -> float:
    """finetune.<key>: ``auto`` gives ``auto``; otherwise a number (unset: 0), refused naming ``allowed``."""
    value = finetune.get(key)
    if str(value).lower() == "auto":
        return auto
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        raise UserError(f"finetune.{key} must be auto or {allowed}, got {value!r}") from None


def _general_pool_mixed_in(finetune: Any) -> str | None:
    """The general noise a share of the mixtures uses: ``builtin`` (procedural), ``real`` (a folder of
    recordings) or None (no general share)."""
    if not float(finetune.get("generic_share") or 0.0) > 0:
        return None
    return "builtin" if uses_builtin_pool(finetune.get("generic_noise")) else "real"


#: finetune.distill=auto: the weight used with the builtin general pool (tune_builtin_full_distill1.md).
AUTO_DISTILL = 1.0


def distill_weight(finetune: Any, has_start: bool) -> float:
    """finetune.distill as a number: ``auto`` is AUTO_DISTILL with the builtin general pool (procedural
    noise, where clean targets alone let the model forget real noise) and 0 with a folder of real general
    noise (which keeps it without) or without a starting model; refused below 0, or on when no mixture
    holds general noise."""
    auto = AUTO_DISTILL if has_start and _general_pool_mixed_in(finetune) == "builtin" else 0.0
    weight = _auto_or_number(finetune, "distill", auto, "a number >= 0")
    if weight < 0:
        raise UserError(f"finetune.distill must be auto, 0 (off) or more, got {weight}")
    if weight > 0 and _general_pool_mixed_in(finetune) is None:
        raise UserError("finetune.distill keeps the init_from model's output on the general-noise mixtures: "
                        "give finetune.generic_share above 0")
    return weight


#: finetune.keep_start=auto: the share of the starting weights kept with the builtin general pool
#: (weight-space ensembling; benchmarks/results/tune_keep_start.md).
AUTO_KEEP_START = 0.375


def keep_start_share(finetune: Any, has_start: bool) -> float:
    """finetune.keep_start as a number in [0, 1): the share of the init_from weights in the saved model,
    which is ``(1 - share) x trained + share x start`` (weight-space ensembling, WiSE-FT). ``auto`` is
    AUTO_KEEP_START when no real general noise guards the run (the builtin pool, or no general share)
    and 0 with a folder of real general noise or without a starting model."""
    auto = AUTO_KEEP_START if has_start and _general_pool_mixed_in(finetune) != "real" else 0.0
    share = _auto_or_number(finetune, "keep_start", auto, "a number in [0, 1)")
    if not 0.0 <= share < 1.0:
        raise UserError(f"finetune.keep_start must be auto or in [0, 1) (0: off; 1 would undo the training), "
                        f"got {share:g}")
    return share


def blend_weights(trained: dict[str, torch.Tensor], start: dict[str, torch.Tensor],
                  share: float) -> dict[str, torch.Tensor]:
    """``(1 - share) x trained + share x start`` for each floating tensor that ``start`` has under the same
    key (weights and normalisation statistics alike); counters and tensors start lacks stay as trained."""
    out = {}
    for key, value in trained.items():
        ref = start.get(key)
        if ref is None or not value.is_floating_point():
            out[key] = value
        else:
            out[key] = torch.lerp(value.float(), ref.to(value.device).float(), float(share)).to(value.dtype)
    return out


def _part(params: dict[str, torch.nn.Parameter], name: str, option: str) -> list[str]:
    """Names of the parameters in the part ``name`` (a parameter-name prefix such as ``net.down``); an unknown
    part is refused naming the option and the parts that exist."""
    hits = [n for n in params if n == name or n.startswith(name + ".")]
    if not hits:
        stages = sorted({".".join(n.split(".")[:2]) for n in params})
        raise UserError(f"{option}: no part named {name!r}; parts: {', '.join(stages)}")
    return hits


def freeze(denoiser: torch.nn.Module, names: list[str]) -> int:
    """Stop training the named parts (parameter-name prefixes such as ``net.down``); returns how many
    parameters are frozen. Unknown names are refused with the names that exist."""
    params = dict(denoiser.named_parameters())
    frozen = 0
    for name in names:
        for p in (params[n] for n in _part(params, name, "finetune.freeze")):
            p.requires_grad_(False)
            frozen += p.numel()
    if names:
        log.info("finetune.freeze %s: %s parameters frozen", list(names), f"{frozen:,}")
    return frozen


def lr_scale_groups(denoiser: torch.nn.Module, scales: Any) -> list[tuple[list[torch.nn.Parameter], float]]:
    """The parameters of each named part (parameter-name prefix such as ``net.dec``) with its lr multiplier,
    for ``finetune.lr_scale={net.dec: 3}``: a part can move faster or slower than the rest. A parameter in
    two named parts takes the longer (more specific) prefix's factor. Unknown names and factors that are not
    positive numbers are refused; None means one lr for all."""
    if scales is None:
        return []
    if not isinstance(scales, Mapping):
        raise UserError(f"finetune.lr_scale must map parts to factors, e.g. {{net.dec:3}}, got {scales!r}")
    params = dict(denoiser.named_parameters())
    owner: dict[str, str] = {}
    for name, factor in scales.items():
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
            raise UserError(f"finetune.lr_scale.{name} must be a positive number, got {factor!r}")
        for n in _part(params, name, "finetune.lr_scale"):
            if n not in owner or len(name) > len(owner[n]):
                owner[n] = name
    groups = [([params[n] for n in params if owner.get(n) == name], float(f)) for name, f in scales.items()]
    for (ps, factor), name in zip(groups, scales):
        log.info("finetune.lr_scale: %s trains at %s x the lr (%s parameters)", name, f"{factor:g}",
                 f"{sum(p.numel() for p in ps):,}")
    return [(ps, f) for ps, f in groups if ps]
