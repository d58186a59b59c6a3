"""denoiselab-train: train (and optionally test) one configuration, or a sweep with -m.

    denoiselab-train data.clean=DIR data.noise=DIR model/net=unet trainer.max_steps=1000
    denoiselab-train -m model/net=unet,resnet,lstm ...      # one run dir + one W&B run per job
    denoiselab-train ... ckpt_path=PATH                     # exact resume
    denoiselab-train ... hydra.run.dir=OUT auto_resume=true # rerun = resume from OUT/checkpoints
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from denoiselab.cli.config import CONFIG_DIR
from denoiselab.training.train import train


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg)


if __name__ == "__main__":
    main()
