import pytest
import torch

from denoiselab.export import main
from denoiselab.inference import load_denoiser

onnx = pytest.importorskip("onnxruntime")


def test_onnx_export_matches_pytorch_and_runs_enhance(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(out), "--format", "onnx"]) == 0
    diff = float(capsys.readouterr().out.split("max |mask diff| = ")[1].split()[0])
    assert diff < 1e-4
    torch_model, onnx_model = load_denoiser(tiny_ckpt), load_denoiser(out)
    x = torch.randn(1, 24000) * 0.1
    assert (torch_model.enhance(x) - onnx_model.enhance(x)).abs().max() < 1e-4
    # exporting must not flip the in-memory model into training mode
    assert not torch_model.training


def test_torchscript_and_inference_formats(tiny_ckpt, tmp_path, capsys):
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(tmp_path / "m.ts"), "--format", "torchscript"]) == 0
    assert float(capsys.readouterr().out.split("= ")[1].split()[0]) < 1e-5
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(tmp_path / "m.pt")]) == 0
    assert torch.load(tmp_path / "m.pt", weights_only=True)["format"] == "denoiselab-inference"


def test_export_of_a_missing_checkpoint_fails_clearly(tmp_path, caplog):
    assert main(["--ckpt", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "not found" in caplog.text
