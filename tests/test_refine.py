"""The bin refiner: a per-bin correction of a band model's output. It must start as "no change" (so
fine-tuning can add it to a trained model), keep chunked = whole-file output (its past frames count into
the receptive field), and travel with the model through inference files and ONNX."""

import numpy as np
import pytest
import torch

from denoiselab.core.denoiser import Denoiser
from denoiselab.core.enhancer import Enhancer
from denoiselab.core.model_files import export_onnx, load_denoiser, save_inference
from denoiselab.core.refine import BinRefiner

ERB = {"n_fft": 512, "hop_length": 128, "bands": "erb", "n_bands": 32}


def _model(refine=None, name="unet", seed=0) -> Denoiser:
    torch.manual_seed(seed)
    den = Denoiser(net={"name": name, "kwargs": {"base_channels": 4}}, frontend=ERB, refine=refine)
    g = torch.Generator().manual_seed(seed)
    for m in den.modules():  # trained-looking BatchNorm statistics and a refiner that does something
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    if den.refine is not None:
        with torch.no_grad():
            den.refine.out.weight.copy_(torch.randn(den.refine.out.weight.shape, generator=g))
    return den.eval()


def test_a_new_refiner_changes_nothing_until_it_is_trained():
    plain = _model(None, name="dpunet")
    refined = Denoiser(net={"name": "dpunet", "kwargs": {"base_channels": 4}}, frontend=ERB, refine=8)
    missing = refined.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("refine.") for k in missing)
    refined.eval()
    x = torch.randn(2, 16000 + 333, generator=torch.Generator().manual_seed(1)) * 0.1
    assert torch.equal(plain.enhance(x), refined.enhance(x))
    # and its first gradient step moves the output (the zero last layer gets a gradient)
    refined.train()
    out = refined(x)
    out.enhanced.pow(2).mean().backward()
    assert refined.refine.out.weight.grad.abs().sum() > 0


def test_the_refiner_reads_past_frames_only():
    ref = BinRefiner(channels=4).eval()
    torch.nn.init.normal_(ref.out.weight)
    raw, mag = torch.randn(1, 257, 40), torch.rand(1, 257, 40)
    later = mag.clone()
    later[..., 25:] = torch.rand(1, 257, 15)
    a, b = ref(raw, mag), ref(raw, later)
    assert torch.equal(a[..., :25], b[..., :25]) and not torch.equal(a[..., 25:], b[..., 25:])
    assert ref.context_frames == 4


def test_chunked_output_equals_whole_file_output_with_a_refiner():
    den = _model(8)
    plain = _model(None)
    assert den.receptive_field_samples == plain.receptive_field_samples + 4 * 128
    x = np.random.default_rng(0).standard_normal((1, int(16000 * 7.31) + 5)).astype(np.float32) * 0.1
    whole = Enhancer(den, chunk_seconds=60).enhance(x, 16000)
    enhancer = Enhancer(den, chunk_seconds=1.3)
    assert enhancer.exact_chunking
    assert np.abs(enhancer.enhance(x, 16000) - whole).max() < 1e-4


def test_a_refined_model_keeps_its_refiner_in_files_and_onnx(tmp_path):
    den = _model(6)
    again = load_denoiser(save_inference(den, tmp_path / "m.pt"))
    assert again.spec()["spec_version"] == 3 and again.spec()["refine"]["channels"] == 6
    assert _model(None).spec()["spec_version"] == 2 and "refine" not in _model(None).spec()  # others unchanged
    x = torch.randn(1, 16000 * 2 + 77, generator=torch.Generator().manual_seed(2)) * 0.1
    assert torch.equal(den.enhance(x), again.enhance(x))
    pytest.importorskip("onnxruntime")
    _, diff = export_onnx(den, tmp_path / "m.onnx")
    assert diff < 1e-4
    onnx_model = load_denoiser(tmp_path / "m.onnx")
    for n in (24007, 1234):
        y = torch.randn(2, n, generator=torch.Generator().manual_seed(n)) * 0.1
        assert (den.enhance(y) - onnx_model.enhance(y)).abs().max() < 1e-4, n


def test_on_a_multichannel_output_the_refiner_corrects_the_mask_channel_only_and_bad_settings_are_refused():
    torch.manual_seed(0)
    den = Denoiser(net={"name": "unet", "kwargs": {"base_channels": 4}}, frontend=ERB, processor="deep_filter",
                   refine=4).eval()
    with torch.no_grad():
        torch.nn.init.normal_(den.refine.out.weight)
    mag = torch.rand(1, 257, 37, generator=torch.Generator().manual_seed(3))
    refined = den.estimate(mag)
    plain = den.frontend.to_bins(den.net(den.frontend.features(mag))[..., :37].float())
    assert torch.equal(refined[:, 1:], plain[:, 1:]) and not torch.allclose(refined[:, 0], plain[:, 0])
    with pytest.raises(ValueError, match="odd freq_kernel"):
        BinRefiner(channels=4, freq_kernel=4)
