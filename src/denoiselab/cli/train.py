"""denoiselab-train: train (and optionally test) one configuration, or a sweep with -m.

    denoiselab-train data.clean=DIR data.noise=DIR model/net=unet trainer.max_steps=1000
    denoiselab-train -m model/net=unet,resnet,lstm ...      # one run dir + one W&B run per job
    denoiselab-train ... ckpt_path=PATH                     # exact resume
    denoiselab-train ... hydra.run.dir=OUT auto_resume=true # rerun = resume from OUT/checkpoints
    denoiselab-train experiment=finetune init_from=default data.clean=DIR data.noise=ROOM_NOISE

--debug shows the traceback of a user error.
"""

from __future__ import annotations

from typing import Any

from denoiselab.cli.errors import hydra_cli


def _train(cfg: Any) -> float | None:
    from denoiselab.training.train import train  # after the override check: Lightning loads slowly

    return train(cfg)


main = hydra_cli("denoiselab-train", "train", _train)

if __name__ == "__main__":
    main()
