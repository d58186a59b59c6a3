"""Where the Hydra configs live: the package's conf/ folder (the repository's top-level conf/ links
to it), so source checkouts, editable installs and wheels all read the same files."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
