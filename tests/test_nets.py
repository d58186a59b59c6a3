import pytest
import torch

from denoiselab.model.denoiser import Denoiser
from denoiselab.nets import NETS, build_net

TINY = {"unet": {"base_channels": 4, "depth": 2}, "resnet": {"channels": 16, "blocks": 2},
        "lstm": {"hidden_size": 16, "num_layers": 1}, "crn": {"channels": [4, 8], "hidden_size": 16},
        "conformer": {"dim": 16, "num_layers": 1, "num_heads": 2, "kernel_size": 3}}


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("frames", [7, 33])
def test_backbones_map_features_to_same_shape(name, frames):
    net = build_net(name, 129, **TINY[name])
    out = net(torch.randn(2, 129, frames))
    assert out.shape == (2, 129, frames)


def test_every_registered_backbone_has_a_tiny_test_config():
    assert set(TINY) == set(NETS)


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("head", ["mask", "noise"])
def test_denoiser_mask_in_unit_range_and_output_length(name, head):
    den = Denoiser(net={"name": name, "kwargs": TINY[name]}, frontend={"n_fft": 256, "hop_length": 64},
                   sample_rate=16000, head=head)
    x = torch.randn(2, 5003) * 0.1
    out = den(x)
    assert out.enhanced.shape == x.shape
    assert out.mask.min() >= 0 and out.mask.max() <= 1


def test_spec_roundtrip_rebuilds_the_same_model():
    den = Denoiser(net={"name": "crn", "kwargs": TINY["crn"]}, frontend={"n_fft": 256, "hop_length": 64})
    den.eval()
    clone = Denoiser.from_spec(den.spec())
    clone.load_state_dict(den.state_dict())
    clone.eval()
    x = torch.randn(1, 4000)
    assert torch.allclose(den.enhance(x), clone.enhance(x))


def test_unknown_backbone_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: conformer, crn, lstm, resnet, unet"):
        build_net("transformer9000", 129)


def test_strength_zero_returns_the_input():
    den = Denoiser(net={"name": "resnet", "kwargs": TINY["resnet"]}, frontend={"n_fft": 256, "hop_length": 64}).eval()
    x = torch.randn(1, 8000) * 0.1
    assert (den.enhance(x, strength=0.0) - x).abs().max() < 1e-5


@pytest.mark.parametrize("kwargs, match", [({"dim": 30, "num_heads": 4}, "dim divisible by num_heads"),
                                           ({"kernel_size": 4}, "kernel_size must be odd")])
def test_conformer_refuses_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_net("conformer", 129, **kwargs)
