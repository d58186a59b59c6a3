"""The package's layers import one way: cli -> training -> evaluation -> core, and using a model needs
none of Lightning, Hydra, OmegaConf or W&B."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "denoiselab"
FRAMEWORKS = ("lightning", "lightning_fabric", "pytorch_lightning", "hydra", "omegaconf", "wandb")
#: what each layer must never import (its own and lower layers are fine)
FORBIDDEN = {
    "core": ("denoiselab.training", "denoiselab.evaluation", "denoiselab.cli", *FRAMEWORKS),
    "evaluation": ("denoiselab.training", "denoiselab.cli", "lightning", "hydra", "wandb"),
    "training": ("denoiselab.cli",),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every imported module name in a file, including imports inside functions."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_down_only(layer):
    files = sorted((PKG / layer).rglob("*.py"))
    assert files, f"no files in layer {layer}"
    bad = [f"{f.relative_to(PKG)}:{line}: {name}" for f in files for line, name in _imports(f)
           if any(name == x or name.startswith(x + ".") for x in FORBIDDEN[layer])]
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_the_scanner_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from denoiselab.training import train\n    import lightning as L\n")
    names = [n for _, n in _imports(f)]
    assert "denoiselab.training" in names and "lightning" in names


def test_loading_and_using_a_model_imports_no_training_framework():
    code = ("import sys, numpy as np, denoiselab\n"
            "m = denoiselab.load_model('default')\n"
            "y = m.enhance(np.random.default_rng(0).standard_normal(12345).astype('float32') * 0.1, 16000)\n"
            "assert y.shape == (12345,)\n"
            f"print(sorted({{k.split('.')[0] for k in sys.modules}} & set({FRAMEWORKS!r})))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout
