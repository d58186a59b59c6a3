import numpy as np
import pytest
import torch

from denoiselab.core.denoiser import Denoiser
from denoiselab.core.enhancer import Enhancer, load_model
from denoiselab.core.errors import UserError
from denoiselab.core.model_files import load_denoiser, save_inference

from hydra_helpers import TINY


def _random_bn(d: Denoiser) -> Denoiser:
    g = torch.Generator().manual_seed(0)
    for m in d.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return d.eval()


@pytest.mark.parametrize("name,hop", [("unet", 128), ("unet", 256), ("resnet", 128)])
@pytest.mark.parametrize("rate", [16000, 44100])
def test_chunked_output_equals_whole_file_output(name, hop, rate):
    """The README's promise, as a user meets it: default backbone sizes, the enhancer's default context
    (the receptive field: 2 s for the U-Net at hop 256, more than the old fixed 1.5 s), a length off
    every grid, and the whole signal compared, the padded final chunk included."""
    torch.manual_seed(0)
    den = _random_bn(Denoiser(net={"name": name, "kwargs": {}}, frontend={"n_fft": 512, "hop_length": hop}))
    x = np.random.default_rng(0).standard_normal((1, int(rate * 9.37) + 3)).astype(np.float32) * 0.1
    whole = Enhancer(den, chunk_seconds=60).enhance(x, rate)
    for chunk in (1.0, 3.7):
        enhancer = Enhancer(den, chunk_seconds=chunk)
        assert enhancer.exact_chunking and enhancer.context_seconds * rate >= den.receptive_field_samples
        chunked = enhancer.enhance(x, rate)
        assert chunked.shape == x.shape
        assert np.abs(chunked - whole).max() < 1e-4, chunk


def test_receptive_field_bounds_the_dependence_of_the_output():
    """Changing the input beyond the stated receptive field leaves an output frame untouched (so the
    context the enhancer picks is enough); changing it inside does not."""
    torch.manual_seed(0)
    for name in ("unet", "resnet"):
        den = _random_bn(Denoiser(net={"name": name, "kwargs": {}}, frontend={"n_fft": 512, "hop_length": 256}))
        field = den.receptive_field_samples
        x = torch.randn(1, 16000 * 12) * 0.1
        centre = x.shape[-1] // 2
        y = den.enhance(x)
        far, near = x.clone(), x.clone()
        far[..., centre + field + 512:] = 0.0
        near[..., centre + 256: centre + 2048] = 0.0
        assert torch.equal(den.enhance(far)[..., centre], y[..., centre]), name
        assert not torch.equal(den.enhance(near)[..., centre - 64: centre + 64], y[..., centre - 64: centre + 64])


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_backbone_states_a_receptive_field_that_holds_or_none(name):
    """What chunked inference trusts of a backbone (a new one included): an input change beyond its stated
    receptive field leaves the output untouched; without one (recurrence, attention) chunking says it is an
    approximation."""
    torch.manual_seed(0)
    den = _random_bn(Denoiser(net={"name": name, "kwargs": TINY[name]},
                              frontend={"n_fft": 256, "hop_length": 64}))
    field = den.receptive_field_samples
    if field is None:
        assert not Enhancer(den).exact_chunking
        return
    x = torch.randn(1, 16000 * 4) * 0.1
    centre = x.shape[-1] // 2
    far = x.clone()
    far[..., centre + 32 + field:] = 0.0  # the input the outputs centre +-32 may depend on, and no more
    far[..., : centre - 32 - field] = 0.0
    assert torch.equal(den.enhance(far)[..., centre - 32: centre + 32], den.enhance(x)[..., centre - 32: centre + 32])
    assert Enhancer(den).exact_chunking


def test_a_context_shorter_than_the_receptive_field_is_warned_and_recurrent_nets_are_approximate():
    den = Denoiser(net={"name": "unet", "kwargs": {}}, frontend={"n_fft": 512, "hop_length": 256})
    with pytest.warns(UserWarning, match="shorter than the receptive field"):
        assert not Enhancer(den, context_seconds=0.5).exact_chunking
    dp = Denoiser(net={"name": "dpunet", "kwargs": {}}, frontend={"n_fft": 512, "hop_length": 256})
    assert dp.receptive_field_samples is None and not Enhancer(dp).exact_chunking


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_inference_file_roundtrip_and_lightning_checkpoint(tiny_ckpt, tmp_path, suffix):
    den = load_denoiser(tiny_ckpt)
    path = save_inference(den, tmp_path / f"model{suffix}")
    if suffix == ".pt":
        raw = torch.load(path, weights_only=True)
        assert raw["format"] == "denoiselab-inference" and raw["spec"]["net"]["name"] == "unet"
    again = load_denoiser(path)
    x = torch.randn(1, 16000) * 0.1
    assert torch.allclose(den.enhance(x), again.enhance(x), atol=1e-6)
    assert path.stat().st_size < 2_000_000


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_half_precision_file_is_half_the_size_and_computes_in_float32(tmp_path, suffix):
    torch.manual_seed(0)
    den = Denoiser(net={"name": "lstm", "kwargs": {"hidden_size": 64, "num_layers": 2}},
                   frontend={"n_fft": 512, "hop_length": 256}).eval()
    full = save_inference(den, tmp_path / f"full{suffix}")
    half = save_inference(den, tmp_path / f"half{suffix}", half=True)
    assert 0.45 < half.stat().st_size / full.stat().st_size < 0.55
    again = load_denoiser(half)
    assert all(p.dtype == torch.float32 for p in again.parameters())
    for name, buf in again.named_buffers():  # normalisation statistics keep full precision
        torch.testing.assert_close(buf, dict(den.named_buffers())[name], rtol=0, atol=0)
    x = torch.randn(1, 16000) * 0.1
    ref, out = den.enhance(x), again.enhance(x)
    assert 0 < (ref - out).abs().max() < 1e-3 * ref.abs().max()


@pytest.mark.parametrize("shape,rate", [((2, 48000 * 2), 48000), ((8000 * 2,), 8000), ((6, 16000), 16000)])
def test_api_keeps_shape_type_and_rate(tiny_ckpt, shape, rate):
    model = load_model(tiny_ckpt)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 0.1
    y = model.enhance(x, rate)
    assert isinstance(y, np.ndarray) and y.shape == x.shape and np.isfinite(y).all()
    yt = model.enhance(torch.from_numpy(x), rate)
    assert isinstance(yt, torch.Tensor) and torch.allclose(yt, torch.from_numpy(y), atol=1e-6)
    assert model.enhance(x, rate, downmix=True).shape == shape[-1:]


def test_api_takes_soundfile_and_scipy_arrays_as_they_are_read(tiny_ckpt, tmp_path):
    """sf.read gives [T, C]; scipy's wavfile and sf.read(dtype='int16') give integer PCM. Both go in as read and
    come back in the same layout and dtype, equal to the [C, T] float result (a [T, C] array used to be taken
    as T channels of C samples each: 96000 tiny channels that never finished)."""
    import soundfile as sf

    model = load_model(tiny_ckpt)
    x = np.random.default_rng(2).standard_normal((2, 48000)).astype(np.float32) * 0.1
    sf.write(tmp_path / "st.wav", x.T, 48000, subtype="PCM_16")
    as_read, rate = sf.read(tmp_path / "st.wav", dtype="float32")
    assert as_read.shape == (48000, 2)
    channels_first = model.enhance(np.ascontiguousarray(as_read.T), rate)
    y = model.enhance(as_read, rate)
    assert y.shape == (48000, 2) and np.array_equal(y, channels_first.T)
    pcm, _ = sf.read(tmp_path / "st.wav", dtype="int16")
    yi = model.enhance(pcm, rate)
    assert yi.dtype == np.int16 and yi.shape == (48000, 2)
    assert np.abs(yi / 32768.0 - y).max() <= 1.5 / 32768  # the float result, rounded to 16 bits
    assert model.enhance(pcm[:, 0], rate, downmix=True).dtype == np.int16


def test_strength_and_attenuation_limit(tiny_ckpt):
    x = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    assert np.abs(load_model(tiny_ckpt, strength=0.0).enhance(x, 16000) - x).max() < 1e-5
    full = load_model(tiny_ckpt).enhance(x, 16000)
    limited = load_model(tiny_ckpt, atten_limit_db=3.0).enhance(x, 16000)
    # a 3 dB floor keeps at least ~70 % of the input energy in every bin
    assert np.sum(limited ** 2) >= 0.5 * np.sum(x ** 2) - 1e-6
    assert np.sum(limited ** 2) >= np.sum(full ** 2) - 1e-6


def test_bad_inputs_are_refused_clearly(tiny_ckpt, tmp_path):
    model = load_model(tiny_ckpt)
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.enhance(np.array([0.0, np.nan, 0.0], dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="shape"):
        model.enhance(np.zeros((1, 2, 3), dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="strength"):
        load_model(tiny_ckpt, strength=2.0)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):  # was taken as 1, silently
        load_model(tiny_ckpt, batch_size=0)
    with pytest.raises(UserError, match="accelerator 'tpu' is not a torch device"):  # was torch's traceback
        load_model(tiny_ckpt, accelerator="tpu")
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_model(tmp_path / "nope.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="cannot be read"):
        load_model(tmp_path / "junk.ckpt")


def test_zero_length_input_gives_zero_length_output(tiny_ckpt):
    assert load_model(tiny_ckpt).enhance(np.zeros(0, dtype=np.float32), 16000).shape == (0,)


def test_top_level_load_model_api(tiny_ckpt):
    import denoiselab

    model = denoiselab.load_model(tiny_ckpt, strength=0.5)
    x = np.random.default_rng(2).standard_normal(8000).astype(np.float32) * 0.1
    y = model.enhance(x, 16000)
    assert y.shape == x.shape and model.strength == 0.5
