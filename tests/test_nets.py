import pytest
import torch

from denoiselab.core.denoiser import Denoiser
from denoiselab.core.nets import NETS, build_net

from hydra_helpers import TINY


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("frames", [7, 33])
def test_backbones_map_features_to_same_shape(name, frames):
    net = build_net(name, 129, **TINY[name])
    out = net(torch.randn(2, 129, frames))
    assert out.shape == (2, 129, frames)


def test_every_registered_backbone_has_a_tiny_test_config():
    assert set(TINY) == set(NETS)


def test_every_backbone_config_builds_a_registered_backbone_and_every_backbone_has_one(tmp_path):
    """conf/model/net/NAME.yaml is what `model/net=NAME` selects: a config whose class is not registered
    could train but not be saved or loaded again (files store the registered name), and a registered
    backbone without a config cannot be chosen from the command line."""
    import importlib

    from denoiselab.cli.config import CONFIG_DIR

    from hydra_helpers import compose_train

    built = set()
    for path in sorted((CONFIG_DIR / "model" / "net").glob("*.yaml")):
        node = compose_train([f"model/net={path.stem}"], tmp_path).model.net
        module, _, cls = str(node._target_).rpartition(".")
        target = getattr(importlib.import_module(module), cls)
        assert node.get("_partial_") is True, f"{path.name}: _partial_: true (the model passes n_freqs)"
        assert getattr(target, "registry_name", None) in NETS and NETS[target.registry_name] is target, path.name
        built.add(target.registry_name)
    assert built == set(NETS), f"registered without a config: {sorted(set(NETS) - built)}"


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
    with pytest.raises(ValueError, match="allowed: conformer, crn, dpcrn, dpunet, lstm, resnet, unet"):
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


@pytest.mark.parametrize("causal", [True, False])
def test_dpcrn_causal_output_ignores_future_frames(causal):
    torch.manual_seed(0)
    net = build_net("dpcrn", 65, channels=[4, 8], blocks=1, hidden_size=8, causal=causal).eval()
    x = torch.randn(1, 65, 20)
    changed = x.clone()
    changed[..., 12:] += 1.0  # perturb the future of frame 11
    with torch.no_grad():
        diff = (net(x) - net(changed))[..., :12].abs().max()
    if causal:
        assert diff < 1e-6
    else:
        assert diff > 1e-4  # the bidirectional time path looks ahead


@pytest.mark.parametrize("kwargs, match", [({"channels": []}, "at least one encoder layer"),
                                           ({"blocks": 0}, "blocks >= 1")])
def test_dpcrn_refuses_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_net("dpcrn", 129, **kwargs)


def test_dpunet_bottleneck_gives_whole_utterance_context():
    """A plain depth-2 U-Net cannot see 60 frames away; the dual-path bottleneck can."""
    torch.manual_seed(0)
    x = torch.randn(1, 65, 96)
    changed = x.clone()
    changed[..., 80:] += 1.0
    for name, expect_far_context in (("unet", False), ("dpunet", True)):
        net = build_net(name, 65, **TINY[name]).eval()
        with torch.no_grad():
            diff = (net(x) - net(changed))[..., :16].abs().max()
        assert (diff > 0) == expect_far_context, name  # the plain U-Net's output there is bit-identical
