"""Exported files (ONNX, TorchScript, inference files) reproduce the PyTorch model at the lengths users
give them: off the pooling grid, very short, batch > 1, through the whole enhance path."""

import pytest
import torch

from denoiselab.cli.export import main
from denoiselab.core.denoiser import Denoiser
from denoiselab.core.model_files import ExportError, export_onnx, export_torchscript, load_denoiser

onnx = pytest.importorskip("onnxruntime")

SMALL = {"unet": {"base_channels": 4}, "dpunet": {"base_channels": 4, "hidden_size": 16},
         "resnet": {"channels": 32, "blocks": 3}, "lstm": {"hidden_size": 32}, "crn": {"channels": [8, 16]},
         "dpcrn": {"channels": [8, 16], "hidden_size": 16},
         "conformer": {"dim": 32, "num_heads": 2, "num_layers": 1, "kernel_size": 3}}


def _model(name: str) -> Denoiser:
    torch.manual_seed(0)
    den = Denoiser(net={"name": name, "kwargs": SMALL[name]}, frontend={"n_fft": 512, "hop_length": 128})
    for m in den.modules():  # non-trivial BatchNorm statistics, as after training
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return den.eval()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_export_reproduces_pytorch_at_lengths_off_the_grid(tmp_path, name, fmt):
    den = _model(name)
    path = tmp_path / f"m.{fmt}"
    if fmt == "onnx" and name == "conformer":
        # torch's MultiheadAttention traces the export length into its reshapes: refused, nothing written
        with pytest.raises(ExportError, match="does not run at 7 frames"):
            export_onnx(den, path)
        assert not path.exists() and not list(tmp_path.iterdir())
        return
    _, diff = (export_onnx if fmt == "onnx" else export_torchscript)(den, path)
    assert diff < 1e-4
    if fmt == "onnx":  # through the whole enhance path: STFT, mask in onnxruntime, iSTFT; odd lengths
        again = load_denoiser(path)
        for n in (24007, 1234, 513):
            x = torch.randn(2, n, generator=torch.Generator().manual_seed(n)) * 0.1
            assert (den.enhance(x) - again.enhance(x)).abs().max() < 1e-4, n


def test_onnx_cli_on_a_trained_checkpoint(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(out), "--format", "onnx"]) == 0
    printed = capsys.readouterr()
    assert float(printed.out.split("max |mask diff| = ")[1].split()[0]) < 1e-4
    assert "Warning" not in printed.err  # the exporter's own notes are not the user's business
    torch_model = load_denoiser(tiny_ckpt)
    assert not torch_model.training  # exporting must not flip the in-memory model into training mode
    x = torch.randn(1, 24011) * 0.1
    assert (torch_model.enhance(x) - load_denoiser(out).enhance(x)).abs().max() < 1e-4


def test_conformer_onnx_export_is_refused_on_the_cli_and_nothing_is_written(tmp_path, capsys):
    from denoiselab.core.model_files import save_inference

    src = save_inference(_model("conformer"), tmp_path / "conformer.pt")
    out = tmp_path / "conformer.onnx"
    assert main(["--ckpt", str(src), "--out", str(out), "--format", "onnx"]) == 2
    assert "export a TorchScript file (--out NAME.ts)" in capsys.readouterr().err and not out.exists()


def test_torchscript_and_inference_formats(tiny_ckpt, tmp_path, capsys):
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(tmp_path / "m.ts"), "--format", "torchscript"]) == 0
    assert float(capsys.readouterr().out.split("= ")[1].split()[0]) < 1e-5
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(tmp_path / "m.pt")]) == 0
    assert torch.load(tmp_path / "m.pt", weights_only=True)["format"] == "denoiselab-inference"


def test_export_of_a_missing_checkpoint_fails_clearly(tmp_path, capsys):
    assert main(["--ckpt", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "denoiselab-export: error: model file not found" in capsys.readouterr().err


def test_the_format_follows_the_extension_and_an_existing_file_is_kept(tiny_ckpt, tmp_path, capsys):
    """--out model.onnx writes ONNX without --format; ONNX into a .pt file (read back as the wrong kind) is
    refused naming the right name; a second export to the same file keeps the first unless --force."""
    out = tmp_path / "model.onnx"
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(out)]) == 0
    assert "parity with PyTorch" in capsys.readouterr().out
    x = torch.randn(1, 24011) * 0.1
    assert (load_denoiser(tiny_ckpt).enhance(x) - load_denoiser(out).enhance(x)).abs().max() < 1e-4
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(tmp_path / "m.pt"), "--format", "onnx"]) == 2
    assert "the extension .pt stands for inference; name the file" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(tmp_path / "m.bin")]) == 2
    assert "say --format" in capsys.readouterr().err
    before = out.stat().st_mtime_ns, out.read_bytes()
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(out)]) == 2
    assert "exists; --force replaces it" in capsys.readouterr().err
    assert (out.stat().st_mtime_ns, out.read_bytes()) == before
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(out), "--force"]) == 0


def test_an_opset_the_graph_cannot_use_and_ignored_options_are_refused_and_nothing_is_left(tiny_ckpt, tmp_path,
                                                                                            capsys):
    """Opset 9 (the exporter's error) and 11 (onnxruntime cannot run the Clip it writes) gave tracebacks, the
    second leaving model.onnx.tmp behind; --half was silently ignored for ONNX."""
    for opset in ("9", "11"):
        assert main(["--ckpt", str(tiny_ckpt), "--out", str(tmp_path / "m.onnx"), "--opset", opset]) == 2
        assert f"ONNX export at opset {opset} failed" in capsys.readouterr().err
        assert not list(tmp_path.iterdir())
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(tmp_path / "m.onnx"), "--half"]) == 2
    assert main(["--ckpt", str(tiny_ckpt), "--out", str(tmp_path / "m.pt"), "--opset", "13"]) == 2
    said = capsys.readouterr().err
    assert "the onnx format keeps float32" in said and "the inference format has none" in said
    assert not list(tmp_path.iterdir())
