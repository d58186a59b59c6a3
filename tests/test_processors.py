"""Mask processors and ERB bands: each processor's arithmetic, strength and floor, its export and chunked
path at lengths off the grid, and model files that carry them."""

import numpy as np
import pytest
import torch

from denoiselab.core.denoiser import Denoiser
from denoiselab.core.enhancer import Enhancer
from denoiselab.core.errors import UserError
from denoiselab.core.model_files import export_onnx, load_denoiser, save_inference
from denoiselab.core.processors import PROCESSORS, build_processor
from denoiselab.core.spectral import erb_matrix

FRONT = {"n_fft": 512, "hop_length": 128}
KINDS = {"noise_subtract": {}, "complex": {}, "db_subtract": {"compression": "db", "norm_warmup_batches": 0},
         "deep_filter": {}}


def _model(processor: str, bands: str = "linear", net: str = "unet") -> Denoiser:
    torch.manual_seed(0)
    front = {**FRONT, **KINDS[processor], "bands": bands}
    den = Denoiser(net={"name": net, "kwargs": {"base_channels": 4} if "unet" in net else {}}, frontend=front,
                   processor=processor)
    for m in den.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return den.eval()


def test_processor_arithmetic_strength_and_floor():
    g = torch.Generator().manual_seed(0)
    spec = torch.complex(torch.randn(1, 5, 7, generator=g), torch.randn(1, 5, 7, generator=g))
    mag = spec.abs()
    ns = build_processor("noise_subtract", head="mask")
    raw = torch.randn(1, 5, 7, generator=g)
    out = ns(raw, spec, mag)
    assert torch.allclose(out.enhanced_spec, spec * (1 - torch.sigmoid(raw)))  # the reference method
    assert torch.allclose(out.removed_mag, torch.sigmoid(raw) * mag, atol=1e-6)
    assert torch.allclose(ns(raw, spec, mag, strength=0.0).enhanced_spec, spec)
    floored = ns(torch.full_like(raw, 20.0), spec, mag, floor=0.25)
    assert torch.allclose(floored.enhanced_mag, 0.25 * mag, atol=1e-6)
    cx = build_processor("complex")
    zero = cx(torch.zeros(1, 2, 5, 7), spec, mag)
    assert torch.allclose(zero.enhanced_spec, spec)  # no noise predicted: the input comes through
    strong = cx(torch.full((1, 2, 5, 7), 5.0), spec, mag, floor=0.3)
    assert (strong.enhanced_mag >= 0.3 * mag - 1e-5).all()
    assert strong.mask is None and cx.channels == 2
    db = build_processor("db_subtract", window_sum=256.0)
    no_noise = torch.full_like(raw, float(np.arctanh(-6.0 / 82.0)))  # noise model 0 dB: nothing subtracted
    assert torch.allclose(db(no_noise, spec, mag).enhanced_spec, spec, atol=1e-5)
    assert set(PROCESSORS) >= {"noise_subtract", "complex", "db_subtract", "deep_filter"}


def test_deep_filter_is_a_gain_plus_a_multi_frame_complex_filter_on_the_low_bins():
    g = torch.Generator().manual_seed(0)
    spec = torch.complex(torch.randn(2, 9, 8, generator=g), torch.randn(2, 9, 8, generator=g))
    mag = spec.abs()
    df = build_processor("deep_filter", order=3, df_bins=4)
    assert df.channels == 7 and df.context_frames == 2
    raw = torch.randn(2, 7, 9, 8, generator=g)
    out = df(raw, spec, mag).enhanced_spec
    gain = 1 - torch.sigmoid(raw[:, 0])
    coef = torch.complex(torch.tanh(raw[:, 1:4]), torch.tanh(raw[:, 4:7]))
    want = spec * gain
    for k in range(4):  # the definition, written out: taps on the current and two past frames, zeros before 0
        for t in range(8):
            want[:, k, t] += sum(coef[:, i, k, t] * spec[:, k, t - i] for i in range(3) if t - i >= 0)
    assert torch.allclose(out, want, atol=1e-6)
    assert torch.allclose(out[:, 4:], (spec * gain)[:, 4:])  # above df_bins: the gain alone
    plain = raw.clone()
    plain[:, 1:] = 0.0  # no filter: exactly noise_subtract's mask
    assert torch.allclose(df(plain, spec, mag).enhanced_spec,
                          build_processor("noise_subtract", head="mask")(raw[:, 0], spec, mag).enhanced_spec)
    assert torch.allclose(df(raw, spec, mag, strength=0.0).enhanced_spec, spec)
    assert (df(torch.full_like(raw, -9.0), spec, mag, floor=0.2).enhanced_mag >= 0.2 * mag - 1e-5).all()
    with pytest.raises(ValueError, match="order"):
        build_processor("deep_filter", order=0)


def test_db_subtract_needs_the_seeds_db_features():
    with pytest.raises(UserError, match="compression=db"):
        Denoiser(net={"name": "unet", "kwargs": {}}, frontend=FRONT, processor="db_subtract")


@pytest.mark.parametrize("processor", sorted(KINDS))
@pytest.mark.parametrize("bands", ["linear", "erb"])
def test_every_processor_exports_chunks_and_round_trips_at_lengths_off_the_grid(tmp_path, processor, bands):
    den = _model(processor, bands)
    x = np.random.default_rng(1).standard_normal((1, int(16000 * 7.31) + 5)).astype(np.float32) * 0.1
    whole = Enhancer(den, chunk_seconds=60).enhance(x, 16000)
    chunked = Enhancer(den, chunk_seconds=1.7).enhance(x, 16000)
    assert np.abs(chunked - whole).max() < 1e-4  # pointwise processors: chunking stays exact for the U-Net
    again = load_denoiser(save_inference(den, tmp_path / "m.pt"))
    assert again.spec() == den.spec()
    xt = torch.from_numpy(x)
    assert torch.allclose(again.enhance(xt), den.enhance(xt), atol=1e-6)
    pytest.importorskip("onnxruntime")
    path, diff = export_onnx(den, tmp_path / "m.onnx")
    assert diff < 1e-4
    via_onnx = load_denoiser(path)
    for n in (24007, 777):
        seg = xt[:, :n]
        assert (via_onnx.enhance(seg) - den.enhance(seg)).abs().max() < 1e-4, n


def test_erb_bands_pool_and_spread_every_bin():
    w = erb_matrix(257, 16000, 32)
    assert w.shape == (32, 257) and torch.allclose(w.sum(1), torch.ones(32))
    assert (w.sum(0) > 0).all()  # no bin left out
    den = _model("noise_subtract", "erb")
    assert den.frontend.n_features == 32 and den.spec()["frontend"]["bands"] == "erb"
    lin = _model("noise_subtract", "linear")
    assert "bands" not in lin.spec()["frontend"]
    # frame-wise nets shrink with the rows they see (the U-Net's cost shrinks per step, not its weights)
    lstm_erb = Denoiser(net={"name": "lstm", "kwargs": {}}, frontend={**FRONT, "bands": "erb"})
    lstm_lin = Denoiser(net={"name": "lstm", "kwargs": {}}, frontend=FRONT)
    assert lstm_lin.num_parameters() - lstm_erb.num_parameters() == (257 - 32) * (256 + 512 + 1)


def test_old_model_files_load_as_noise_subtract():
    spec = load_denoiser().spec()  # the shipped file predates processors
    assert "processor" not in spec and load_denoiser().processor.registry_name == "noise_subtract"


@pytest.mark.parametrize("overrides", [["model/mask_processor=complex", "loss=compressed_complex"],
                                       ["model/mask_processor=deep_filter", "loss=compressed_complex"],
                                       ["model/mask_processor=db_subtract", "loss=db_noise"],
                                       ["model.frontend.bands=erb", "model/net=dpunet"]])
def test_processors_and_bands_train_through_the_configs(corpus, cache_dir, tmp_path, overrides):
    from denoiselab.training.instantiate import close_loggers
    from denoiselab.training.train import run

    from hydra_helpers import TINY_NET, compose_train, corpus_overrides

    net = "dpunet" if "model/net=dpunet" in overrides else "unet"
    cfg = compose_train(["experiment=tiny", *TINY_NET[net], *corpus_overrides(corpus, cache_dir), *overrides,
                         "trainer.max_steps=4", "callbacks.quality=null"], tmp_path / "run")
    try:
        metrics = run(cfg)
    finally:
        close_loggers()
    assert np.isfinite(metrics["val/si_sdr"])
    den = load_denoiser(tmp_path / "run")
    assert den.enhance(torch.randn(1, 5000) * 0.1).shape == (1, 5000)


@pytest.mark.parametrize("processor,loss", [("noise_subtract", "compressed"), ("noise_subtract", "noise_mask"),
                                            ("noise_subtract", "combo"), ("complex", "compressed_complex"),
                                            ("db_subtract", "db_noise"), ("deep_filter", "compressed_complex")])
def test_gradients_stay_finite_on_digital_silence(tmp_path, processor, loss):
    """Zero-padded clips have exact-zero STFT bins; |0| has a 0/0 gradient in torch, which once turned
    a whole training run to NaN. Every processor with its loss must give finite gradients there."""
    from hydra.utils import instantiate

    from denoiselab.training.module import DenoiseModule

    from hydra_helpers import compose_train

    cfg = compose_train([f"loss={loss}"], tmp_path)
    front = {**FRONT, **KINDS[processor]}
    module = DenoiseModule(net={"name": "unet", "kwargs": {"base_channels": 4, "depth": 2}}, frontend=front,
                           loss=instantiate(cfg.loss), optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
                           mask_processor=processor)
    module.log = lambda *a, **k: None
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(2, 8000, generator=g) * 0.1
    clean[:, 5000:] = 0.0  # a zero-padded end
    noise = torch.randn(2, 8000, generator=g) * 0.05
    noise[:, 5000:] = 0.0
    loss_value = module.training_step({"noisy": clean + noise, "clean": clean, "noise": noise}, 0)
    loss_value.backward()
    assert torch.isfinite(loss_value)
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)
