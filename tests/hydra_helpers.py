"""Compose the real Hydra configs in-process (as the CLI would) for tests."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from denoiselab.cli.config import CONFIG_DIR

#: The smallest size of each registered backbone, for tests (a new backbone adds its line here:
#: test_every_registered_backbone_has_a_tiny_test_config says so).
TINY = {"unet": {"base_channels": 4, "depth": 2}, "resnet": {"channels": 16, "blocks": 2},
        "lstm": {"hidden_size": 16, "num_layers": 1}, "crn": {"channels": [4, 8], "hidden_size": 16},
        "dpcrn": {"channels": [4, 8], "blocks": 1, "hidden_size": 8},
        "dpunet": {"base_channels": 4, "depth": 2, "blocks": 1, "hidden_size": 8},
        "conformer": {"dim": 16, "num_layers": 1, "num_heads": 2, "kernel_size": 3}}


def _override(value) -> str:
    return f"[{','.join(map(str, value))}]" if isinstance(value, list) else str(value)


#: The same sizes as Hydra overrides of model.net.
TINY_NET = {name: [f"model.net.{k}={_override(v)}" for k, v in sizes.items()] for name, sizes in TINY.items()}


def corpus_overrides(corpus: dict, cache_dir: Path) -> list[str]:
    return [f"data.clean={corpus['clean']}", f"data.noise={corpus['noise']}",
            f"data.val_clean={corpus['val_clean']}", f"data.val_noise={corpus['val_noise']}",
            f"data.cache_dir={cache_dir}"]


def compose_train(overrides: list[str], out_dir: Path, config_name: str = "train") -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out_dir)
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    return cfg
