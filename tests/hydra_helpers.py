"""Compose the real Hydra configs in-process (as the CLI would) for tests."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from denoiselab.cli.config import CONFIG_DIR

TINY_NET = {"unet": ["model.net.base_channels=4", "model.net.depth=2"],
            "resnet": ["model.net.channels=16", "model.net.blocks=2"],
            "lstm": ["model.net.hidden_size=16", "model.net.num_layers=1"],
            "crn": ["model.net.channels=[4,8]", "model.net.hidden_size=16"],
            "dpcrn": ["model.net.channels=[4,8]", "model.net.blocks=1", "model.net.hidden_size=8"],
            "dpunet": ["model.net.base_channels=4", "model.net.depth=2", "model.net.blocks=1",
                       "model.net.hidden_size=8"],
            "conformer": ["model.net.dim=16", "model.net.num_layers=1", "model.net.num_heads=2",
                          "model.net.kernel_size=3"]}


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
