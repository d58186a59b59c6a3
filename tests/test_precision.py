"""The fine-tune's speed switches: trainer.precision=auto (bf16 autocast where the hardware computes it fast: AMX,
bf16 GPUs; float32 elsewhere) and model.channels_last, each learning what the plain float32 fine-tune learns."""

import pytest
import torch

from denoiselab.core.checkpoints import load_checkpoint
from denoiselab.training import precision as precision_module
from denoiselab.training.instantiate import close_loggers
from denoiselab.training.precision import resolve_precision
from denoiselab.training.train import run

from hydra_helpers import compose_train, corpus_overrides


@pytest.mark.parametrize("amx,expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_a_cpu_takes_bf16_only_with_amx(monkeypatch, amx, expected):
    """AVX512-BF16 without AMX trained 10-16 % fewer steps in bf16 (tune_precision_avx512bf16.md): float32 there."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("auto", "auto") == expected
    assert resolve_precision("32-true", "cpu") == "32-true"  # a precision given is kept as given
    assert resolve_precision("16-mixed", "gpu") == "16-mixed"


@pytest.mark.parametrize("bf16,expected", [(True, "bf16-mixed"), (False, "16-mixed")])
def test_auto_on_a_gpu_takes_bf16_or_else_float16(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert resolve_precision("auto", "gpu") == expected
    assert resolve_precision("auto", "auto") == expected


def test_the_finetune_recipe_asks_for_the_fastest_native_precision(tmp_path):
    assert compose_train(["experiment=finetune"], tmp_path).trainer.precision == "auto"
    assert compose_train([], tmp_path / "plain").trainer.precision == "32-true"  # full training: as measured


def _finetune_default(corpus, cache_dir, out, precision, *extra):
    cfg = compose_train(["experiment=finetune", "init_from=default", *corpus_overrides(corpus, cache_dir),
                         "data.clip_seconds=1.3", "data.batch_size=4", "data.num_workers=0", "trainer.max_time=null",
                         "time_budget=600", "trainer.max_steps=3", "trainer.val_check_interval=null",
                         "trainer.check_val_every_n_epoch=1", "init_validate=false", "finetune.min_noise_seconds=0",
                         "model/scheduler=none", "model.optimizer.lr=1e-3", f"trainer.precision={precision}",
                         *extra], out)
    try:
        run(cfg)
    finally:
        close_loggers()
    state = load_checkpoint(out / "checkpoints" / "last.ckpt")["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("denoiser.net.") and v.is_floating_point()
            and "running_" not in k}


def _moved_from_start(state: dict[str, torch.Tensor], keys) -> torch.Tensor:
    """The fine-tune's change to the shipped model's weights ``keys`` (names as in the checkpoint), flattened."""
    from denoiselab.core.model_files import read_model

    _, start, _ = read_model("default")
    return torch.cat([(state[k] - start[k.removeprefix("denoiser.")].float()).flatten() for k in keys])


def test_a_bf16_fine_tune_of_the_shipped_model_moves_its_weights_as_float32_does(corpus, cache_dir, tmp_path,
                                                                                 monkeypatch, caplog):
    """The shipped backbone, lr > 0, the same mixtures: the bf16-autocast run (auto on a CPU said to compute
    bf16) saves float32 weights whose change from the start points the way the float32 run's does."""
    monkeypatch.setattr(precision_module, "cpu_has_fast_bf16", lambda: True)
    caplog.set_level("INFO")
    mixed = _finetune_default(corpus, cache_dir, tmp_path / "bf16", "auto")
    assert "trainer.precision=auto: bf16-mixed" in caplog.text
    full = _finetune_default(corpus, cache_dir, tmp_path / "fp32", "32-true")
    assert all(v.dtype == torch.float32 for v in mixed.values())
    moved_mixed, moved_full = _moved_from_start(mixed, mixed), _moved_from_start(full, mixed)
    assert moved_full.norm() > 0 and moved_mixed.norm() > 0
    cosine = torch.nn.functional.cosine_similarity(moved_mixed, moved_full, dim=0)
    assert cosine > 0.9, f"bf16 and float32 updates point apart: cosine {cosine:.3f}"


def test_a_channels_last_fine_tune_trains_in_nhwc_and_saves_what_a_contiguous_one_does(corpus, cache_dir, tmp_path):
    """experiment=finetune's model.channels_last: the shipped backbone's conv weights train in NHWC memory (so the
    switch is in effect), and after the same steps at lr > 0 the weights moved as the contiguous run's did (AdamW
    turns rounding-level gradient differences into lr-sized ones on a few entries, so the test is the update as a
    whole: these inputs gave cosine 0.99998, 0.9 % apart) and the saved file denoises a recording off the STFT grid
    as the contiguous run's does (these inputs: 1.6e-4 apart, relative)."""
    from denoiselab.core.model_files import load_denoiser

    assert compose_train(["experiment=finetune"], tmp_path / "cfg").model.channels_last is True
    nhwc = _finetune_default(corpus, cache_dir, tmp_path / "nhwc", "32-true")
    plain = _finetune_default(corpus, cache_dir, tmp_path / "plain", "32-true", "model.channels_last=false")
    convs = [k for k, v in nhwc.items() if v.dim() == 4 and v.shape[1] > 1 and v.shape[2] * v.shape[3] > 1]
    assert convs and all(nhwc[k].is_contiguous(memory_format=torch.channels_last) and not nhwc[k].is_contiguous()
                         for k in convs)
    assert all(plain[k].is_contiguous() for k in convs)
    moved_nhwc, moved_plain = _moved_from_start(nhwc, plain), _moved_from_start(plain, plain)
    assert moved_plain.norm() > 0
    assert torch.nn.functional.cosine_similarity(moved_nhwc, moved_plain, dim=0) > 0.999
    assert (moved_nhwc - moved_plain).norm() < 0.05 * moved_plain.norm()
    noisy = 0.1 * torch.randn(1, 16000 + 77, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out_nhwc = load_denoiser(tmp_path / "nhwc" / "checkpoints" / "last.ckpt").eval().enhance(noisy)
        out_plain = load_denoiser(tmp_path / "plain" / "checkpoints" / "last.ckpt").eval().enhance(noisy)
    assert out_nhwc.shape == noisy.shape
    assert (out_nhwc - out_plain).norm() < 1e-3 * out_plain.norm()
