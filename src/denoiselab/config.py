"""Where the Hydra configs live: the repository's conf/ (source/editable installs) or the copy
packaged as denoiselab.conf (wheel installs)."""

from __future__ import annotations

from pathlib import Path


def _config_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1] / "conf", here / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    try:  # wheel install: conf/ is packaged as denoiselab.conf
        import importlib.resources as res

        return Path(str(res.files("denoiselab.conf")))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover
        return here.parents[1] / "conf"


CONFIG_DIR = _config_dir()
