"""A wheel built from a clean checkout installs into a fresh virtual environment and works outside the
repository: configs and the shipped model are packaged, the entry points run."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout to know its files")]


def _clean_checkout(dst: Path) -> Path:
    """The files a fresh clone of this working tree would have (tracked + untracked, not ignored)."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        src, out = ROOT / rel, dst / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            out.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, out)
    return dst


def test_wheel_from_a_clean_checkout_installs_and_runs_outside_the_repository(tmp_path):
    src = _clean_checkout(tmp_path / "checkout")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-3000:]
    assert "absent from the `packages` configuration" not in log
    assert "SetuptoolsDeprecationWarning" not in log and "_Warning" not in log, log[-3000:]
    wheel = next((tmp_path / "dist").glob("denoiselab-*.whl"))

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    # dependencies: this test environment's packages, but not its editable denoiselab (a plain path
    # line in a .pth does not run the editable finder)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(py), "-c", "import denoiselab; print(denoiselab.__file__)"], cwd=outside,
                           capture_output=True, text=True, env=env, timeout=120)
    assert where.returncode == 0 and where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr
    helped = subprocess.run([str(venv / "bin" / "denoiselab-train"), "--help"], cwd=outside, capture_output=True,
                            text=True, env=env, timeout=300)
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "model/net: conformer, crn, dpcrn, dpunet, dpunet_wide, lstm, resnet, unet" in helped.stdout
    code = ("import numpy as np, denoiselab; m = denoiselab.load_model('default'); "
            "print(m.enhance(np.zeros(16000, 'float32') + 0.01, 16000).shape)")
    used = subprocess.run([str(py), "-c", code], cwd=outside, capture_output=True, text=True, env=env, timeout=300)
    assert used.returncode == 0 and "(16000,)" in used.stdout, used.stderr[-3000:]
