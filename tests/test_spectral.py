import pytest
import torch

from denoiselab.core.spectral import SpectralFrontEnd


@pytest.mark.parametrize("n_fft,hop,window", [(512, 128, "hann"), (256, 64, "hann"), (400, 100, "hamming"),
                                              (512, 256, "sqrt_hann")])
def test_istft_inverts_stft(n_fft, hop, window):
    fe = SpectralFrontEnd(n_fft=n_fft, hop_length=hop, window=window)
    x = torch.randn(3, 16000, generator=torch.Generator().manual_seed(0)) * 0.3
    y = fe.istft(fe.stft(x), x.shape[-1])
    assert y.shape == x.shape
    assert (y - x).abs().max().item() < 1e-5


@pytest.mark.parametrize("compression", ["log1p", "power", "none"])
def test_compression_roundtrip(compression):
    fe = SpectralFrontEnd(compression=compression, power=0.3)
    mag = torch.rand(2, 257, 10) * 5
    assert torch.allclose(fe.decompress(fe.compress(mag)), mag, atol=1e-4)


def test_normalisation_statistics_freeze_and_travel_in_state_dict():
    fe = SpectralFrontEnd(n_fft=64, hop_length=16, norm_warmup_batches=2)
    feats = [torch.randn(4, 33, 20) * 3 + 5 for _ in range(3)]
    for f in feats:
        fe.features(f.expm1().clamp_min(0), update=True)
    assert int(fe.norm_batches) == 2  # frozen after the warm-up
    seen = torch.cat([fe.compress(f.expm1().clamp_min(0)) for f in feats[:2]], 0)
    normed = fe.normalize(seen).transpose(0, 1).reshape(33, -1)
    assert normed.mean(1).abs().max() < 1e-3 and (normed.std(1) - 1).abs().max() < 1e-2
    restored = SpectralFrontEnd(n_fft=64, hop_length=16, norm_warmup_batches=2)
    restored.load_state_dict(fe.state_dict())
    x = torch.rand(1, 33, 5)
    assert torch.equal(restored.normalize(x), fe.normalize(x))


@pytest.mark.parametrize("kwargs,match", [({"window": "kaiser"}, "window"), ({"compression": "cube"}, "compression"),
                                          ({"hop_length": 0}, "positive"),
                                          ({"n_fft": 256, "win_length": 512}, "win_length")])
def test_bad_front_end_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpectralFrontEnd(**kwargs)
