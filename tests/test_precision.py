"""trainer.precision=auto: bf16 autocast where the hardware computes it, float32 where it would be emulated,
and a bf16 fine-tune of the shipped model that learns what a float32 one learns."""

import pytest
import torch

from denoiselab.core.checkpoints import load_checkpoint
from denoiselab.training import precision as precision_module
from denoiselab.training.instantiate import close_loggers
from denoiselab.training.precision import resolve_precision
from denoiselab.training.train import run

from hydra_helpers import compose_train, corpus_overrides


@pytest.mark.parametrize("native,expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_a_cpu_takes_bf16_only_where_the_cpu_computes_it(monkeypatch, native, expected):
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: native)
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


def _finetune_default(corpus, cache_dir, out, precision):
    cfg = compose_train(["experiment=finetune", "init_from=default", *corpus_overrides(corpus, cache_dir),
                         "data.clip_seconds=1.3", "data.batch_size=4", "data.num_workers=0", "trainer.max_time=null",
                         "time_budget=600", "trainer.max_steps=3", "trainer.val_check_interval=null",
                         "trainer.check_val_every_n_epoch=1", "init_validate=false", "finetune.min_noise_seconds=0",
                         "model/scheduler=none", "model.optimizer.lr=1e-3", f"trainer.precision={precision}"], out)
    try:
        run(cfg)
    finally:
        close_loggers()
    state = load_checkpoint(out / "checkpoints" / "last.ckpt")["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("denoiser.net.") and v.is_floating_point()
            and "running_" not in k}


def test_a_bf16_fine_tune_of_the_shipped_model_moves_its_weights_as_float32_does(corpus, cache_dir, tmp_path,
                                                                                 monkeypatch, caplog):
    """The shipped backbone, lr > 0, the same mixtures: the bf16-autocast run (auto on a CPU said to compute
    bf16) saves float32 weights whose change from the start points the way the float32 run's does."""
    from denoiselab.core.model_files import read_model

    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: True)
    caplog.set_level("INFO")
    mixed = _finetune_default(corpus, cache_dir, tmp_path / "bf16", "auto")
    assert "trainer.precision=auto: bf16-mixed" in caplog.text
    full = _finetune_default(corpus, cache_dir, tmp_path / "fp32", "32-true")
    _, start, _ = read_model("default")
    start = {f"denoiser.{k}": v for k, v in start.items()}
    assert all(v.dtype == torch.float32 for v in mixed.values())
    moved_mixed = torch.cat([(mixed[k] - start[k].float()).flatten() for k in mixed])
    moved_full = torch.cat([(full[k] - start[k].float()).flatten() for k in mixed])
    assert moved_full.norm() > 0 and moved_mixed.norm() > 0
    cosine = torch.nn.functional.cosine_similarity(moved_mixed, moved_full, dim=0)
    assert cosine > 0.9, f"bf16 and float32 updates point apart: cosine {cosine:.3f}"
