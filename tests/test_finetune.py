"""Fine-tuning: start from trained weights (init_from), with the file's own model settings, frozen
parts, a general-noise share against forgetting, and lab-style noise recordings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from denoiselab.core.checkpoints import load_checkpoint
from denoiselab.core.errors import UserError
from denoiselab.core.model_files import read_model
from denoiselab.training.instantiate import close_loggers
from denoiselab.training.train import run

from conftest import noise_signal, speechlike
from hydra_helpers import TINY_NET, compose_train, corpus_overrides


def _finetune(corpus, cache_dir, out, init, extra=()):
    cfg = compose_train(["experiment=finetune", f"init_from={init}", *corpus_overrides(corpus, cache_dir),
                         "data.clip_seconds=1.0", "data.batch_size=4", "data.num_workers=0", "trainer.max_time=null",
                         "time_budget=600",  # the recipe's lr decays over a time budget; steps end these runs
                         "trainer.val_check_interval=null", "trainer.check_val_every_n_epoch=1",
                         "finetune.min_noise_seconds=0", *extra], out)
    try:
        return run(cfg), cfg
    finally:
        close_loggers()


def test_init_from_takes_the_files_model_weights_and_statistics(corpus, cache_dir, tmp_path, tiny_ckpt):
    metrics, cfg = _finetune(corpus, cache_dir, tmp_path / "ft", tiny_ckpt,
                             ["trainer.max_steps=2", "model.optimizer.lr=0"])
    spec, start, _ = read_model(tiny_ckpt)
    # the config's defaults (depth 4, n_fft 512) gave way to the file's model (depth 2, n_fft 256)
    assert cfg.model.net == spec["net"] and cfg.model.frontend.n_fft == spec["frontend"]["n_fft"] == 256
    end = load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.ckpt")
    after = {k[len("denoiser."):]: v for k, v in end["state_dict"].items() if k.startswith("denoiser.")}
    for k, v in start.items():  # lr = 0: every weight is the file's; statistics frozen, so identical too
        if "running_" not in k and "num_batches" not in k:
            assert torch.equal(after[k].float(), v.float()), k
    assert end["denoiselab"]["init_from"]["path"] == str(tiny_ckpt)
    assert end["optimizer_states"][0]["state"]  # a fresh optimiser that ran, not the file's
    # where fine-tuning started: the file's model scored on the run's validation mixtures before training
    # (lr = 0: the final weights score the same), recorded apart from the run's own validations
    records = [json.loads(line) for line in (tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()]
    init = [r for r in records if r["event"] == "init_validation"]
    events = [r["event"] for r in records]
    assert len(init) == 1 and init[0]["step"] == 0 and events.index("init_validation") < events.index("start")
    assert metrics["init/val/si_sdr"] == pytest.approx(init[0]["val/si_sdr"])
    assert metrics["val/si_sdr"] == pytest.approx(metrics["init/val/si_sdr"], abs=0.05)
    assert [r for r in records if r["event"] == "validation"]  # the run's own, after training


def test_a_run_that_ends_below_its_starting_model_says_so():
    from denoiselab.training.train import fell_below_start

    assert "0.40 below the init_from model's" in fell_below_start({"init/val/si_sdr": 12.5, "val/si_sdr": 12.1})
    assert fell_below_start({"init/val/si_sdr": 12.1, "val/si_sdr": 12.5}) is None  # it improved
    assert fell_below_start({"val/si_sdr": 12.5}) is None  # not a fine-tuning run (or init_validate=false)


def test_the_finetune_recipe_without_a_start_says_it_trains_from_random_weights(corpus, cache_dir, tmp_path, caplog):
    cfg = compose_train(["experiment=finetune", "init_from=null", *corpus_overrides(corpus, cache_dir),
                         "model/net=unet", *TINY_NET["unet"], "data.clip_seconds=1.0", "data.batch_size=4",
                         "data.num_workers=0", "trainer.max_time=null", "time_budget=600", "trainer.max_steps=1",
                         "finetune.min_noise_seconds=0", "finetune.distill=0", "finetune.keep_start=0"],
                        tmp_path / "run")
    try:
        with caplog.at_level("WARNING"):
            run(cfg)
    finally:
        close_loggers()
    assert "experiment=finetune without init_from trains a new model from random weights" in caplog.text


@pytest.mark.parametrize("override,key", [("model.net.base_channels=8", "model.net.base_channels"),
                                          ("model/net=resnet", "model/net"),
                                          ("model.frontend.n_fft=512", "model.frontend.n_fft")])
def test_an_override_that_contradicts_the_file_is_refused_naming_the_key(corpus, cache_dir, tmp_path, tiny_ckpt,
                                                                        override, key):
    with pytest.raises(UserError, match=f"{key}=.* conflicts with init_from.*drop {key}"):
        _finetune(corpus, cache_dir, tmp_path / "ft", tiny_ckpt, [override, "trainer.max_steps=1"])


def test_a_model_that_does_not_fit_is_refused_unless_init_strict_false(corpus, cache_dir, tmp_path, caplog):
    from denoiselab.core.denoiser import Denoiser
    from denoiselab.core.model_files import save_inference
    from denoiselab.training.finetune import load_weights

    small = Denoiser(net={"name": "unet", "kwargs": {"base_channels": 4, "depth": 2}}, frontend={"n_fft": 256})
    wide = save_inference(Denoiser(net={"name": "unet", "kwargs": {"base_channels": 8, "depth": 2}},
                                   frontend={"n_fft": 256}), tmp_path / "wide.pt")
    with pytest.raises(UserError, match="tensors of another shape.*init_strict=false"):
        load_weights(small, str(wide))
    before = {k: v.clone() for k, v in small.state_dict().items()}
    caplog.set_level("INFO")
    counts = load_weights(small, str(wide), strict=False)
    assert counts["mismatched"] > 0 and counts["loaded"] > 0  # e.g. the statistics fit, the convs do not
    assert all(torch.equal(before[k], v) for k, v in small.state_dict().items() if "net.down" in k)
    assert "loaded" in caplog.text and "other shape" in caplog.text


def test_the_shipped_noise_mask_grows_into_a_deep_filter_that_starts_at_its_output():
    """init_from a noise_subtract file with model/mask_processor=deep_filter: the file's output layer becomes the
    deep filter's mask channel and the filter channels start at zero, so the start is the file's model (to float
    rounding; the shipped model, at a length off every grid)."""
    from denoiselab.core.denoiser import Denoiser
    from denoiselab.core.model_files import load_denoiser, resolve_model_path
    from denoiselab.training.finetune import load_weights

    spec, _, _ = read_model(resolve_model_path("default"))
    grown = Denoiser.from_spec({**spec, "processor": {"name": "deep_filter", "kwargs": {"order": 5, "df_bins": 96}}})
    counts = load_weights(grown, "default")  # strict: every tensor is accounted for
    assert counts == {"loaded": len(grown.state_dict()), "missing": 0, "unexpected": 0, "mismatched": 0}
    weight = grown.net.out.weight
    assert weight.shape[0] == 11 and torch.count_nonzero(weight[1:]) == 0 and torch.count_nonzero(weight[0]) > 0
    rng = np.random.default_rng(3)
    seconds = 3 + 77 / 16000  # off the hop and pooling grids
    noisy = speechlike(seconds, 16000, rng) + 0.3 * noise_signal("white", seconds, 16000, rng)
    noisy = torch.from_numpy(noisy.astype(np.float32))[None]
    shipped = load_denoiser("default").eval()
    expected = shipped.enhance(noisy)
    # equal up to float rounding: an 11-channel output convolution may take another kernel than a 1-channel one
    atol = 1e-5 * float(expected.abs().max())  # 100 dB below the peak
    torch.testing.assert_close(grown.eval().enhance(noisy), expected, rtol=1e-5, atol=atol)


def test_a_fine_tune_grown_into_a_deep_filter_trains_its_filter_and_saves_a_deep_filter(corpus, cache_dir, tmp_path,
                                                                                         tiny_ckpt):
    from denoiselab.core.model_files import load_denoiser

    _finetune(corpus, cache_dir, tmp_path / "ft", tiny_ckpt, ["model/mask_processor=deep_filter",
                                                             "trainer.max_steps=3", "model.optimizer.lr=0.01"])
    ckpt = load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.ckpt")
    assert ckpt["denoiselab"]["init_from"]["grown_to"] == "deep_filter"
    out = ckpt["state_dict"]["denoiser.net.out.weight"]
    assert out.shape[0] == 11 and torch.count_nonzero(out[1:]) > 0  # the filter learnt from its zero start
    model = load_denoiser(tmp_path / "ft" / "checkpoints" / "last.ckpt")
    assert model.processor.registry_name == "deep_filter"
    assert model.enhance(torch.zeros(1, 4001)).shape == (1, 4001)
    # other processor changes still contradict the file
    with pytest.raises(UserError, match="model/mask_processor=complex conflicts with init_from"):
        _finetune(corpus, cache_dir, tmp_path / "bad", tiny_ckpt, ["model/mask_processor=complex",
                                                                  "trainer.max_steps=1"])


def test_frozen_parts_stay_and_the_rest_trains(corpus, cache_dir, tmp_path, tiny_ckpt):
    _finetune(corpus, cache_dir, tmp_path / "ft", tiny_ckpt, ["trainer.max_steps=3", "model.optimizer.lr=0.01",
                                                             "finetune.freeze=[net.down]"])
    _, start, _ = read_model(tiny_ckpt)
    end = {k[len("denoiser."):]: v for k, v in
           load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.ckpt")["state_dict"].items()}
    weights = [k for k in start if k.endswith("weight") and "running" not in k]
    down = [k for k in weights if k.startswith("net.down.")]
    rest = [k for k in weights if not k.startswith("net.down.")]
    assert down and all(torch.equal(end[k], start[k]) for k in down)
    assert sum(not torch.equal(end[k], start[k]) for k in rest) > 0.8 * len(rest)
    with pytest.raises(UserError, match="no part named 'net.encoder'; parts: .*net.down"):
        _finetune(corpus, cache_dir, tmp_path / "bad", tiny_ckpt, ["finetune.freeze=[net.encoder]"])


def test_lr_scale_trains_a_part_at_its_own_rate(corpus, cache_dir, tmp_path, tiny_ckpt):
    """finetune.lr_scale: the named part's optimiser group runs at its factor times the lr through the schedule's
    warm-up and decay; with a tiny factor that part barely moves while the rest trains."""
    _finetune(corpus, cache_dir, tmp_path / "ft", tiny_ckpt, ["trainer.max_steps=3", "model.optimizer.lr=0.01",
                                                             "finetune.lr_scale={net.down:1e-6,net.out:2}"])
    _, start, _ = read_model(tiny_ckpt)
    ckpt = load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.ckpt")
    end = {k[len("denoiser."):]: v for k, v in ckpt["state_dict"].items()}
    weights = [k for k in start if k.endswith("weight") and "running" not in k]
    down = [k for k in weights if k.startswith("net.down.")]
    rest = [k for k in weights if not k.startswith("net.down.")]
    assert down and max((end[k] - start[k]).abs().max().item() for k in down) < 1e-6
    assert min((end[k] - start[k]).abs().max().item() for k in rest) > 1e-4
    lrs = [g["lr"] for g in ckpt["optimizer_states"][0]["param_groups"]]
    assert len(lrs) == 3 and lrs[0] > 0
    assert lrs[1] == pytest.approx(1e-6 * lrs[0]) and lrs[2] == pytest.approx(2 * lrs[0])
    with pytest.raises(UserError, match="no part named 'net.encoder'; parts: .*net.down"):
        _finetune(corpus, cache_dir, tmp_path / "bad", tiny_ckpt, ["finetune.lr_scale={net.encoder:2}"])
    with pytest.raises(UserError, match="finetune.lr_scale.net.down must be a positive number"):
        _finetune(corpus, cache_dir, tmp_path / "bad2", tiny_ckpt, ["finetune.lr_scale={net.down:0}"])
    with pytest.raises(UserError, match="finetune.lr_scale must map parts to factors"):
        _finetune(corpus, cache_dir, tmp_path / "bad3", tiny_ckpt, ["finetune.lr_scale=3"])


def test_an_anchored_fine_tune_is_pulled_back_towards_its_start(corpus, cache_dir, tmp_path, tiny_ckpt):
    """finetune.anchor (L2-SP): with lr > 0 both runs move, the anchored one stays nearer the file's weights;
    the pull is logged and the checkpoint holds no copy of the starting weights."""
    _, start, _ = read_model(tiny_ckpt)

    def distance(run_dir: Path) -> float:
        end = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]
        keys = [k for k in start if k.endswith("weight") and "running" not in k]
        return sum(float((end[f"denoiser.{k}"].float() - start[k].float()).square().sum()) for k in keys)

    steps = ["trainer.max_steps=8", "model.optimizer.lr=0.01"]
    _finetune(corpus, cache_dir, tmp_path / "free", tiny_ckpt, steps)
    metrics, _ = _finetune(corpus, cache_dir, tmp_path / "anchored", tiny_ckpt, [*steps, "finetune.anchor=1e7"])
    free, anchored = distance(tmp_path / "free"), distance(tmp_path / "anchored")
    assert 0 < anchored < 0.5 * free
    assert "train/loss_anchor" in metrics
    ckpt = load_checkpoint(tmp_path / "anchored" / "checkpoints" / "last.ckpt")
    assert not [k for k in ckpt["state_dict"] if "anchor" in k]


@pytest.mark.parametrize("extra,message", [(["init_from=null", "finetune.anchor=1"], "give init_from"),
                                           (["finetune.anchor=-1"], "0 \\(off\\) or more")])
def test_an_anchor_without_a_start_or_below_zero_is_refused(corpus, cache_dir, tmp_path, tiny_ckpt, extra, message):
    with pytest.raises(UserError, match=message):
        _finetune(corpus, cache_dir, tmp_path / "ft", tiny_ckpt, extra)


def test_distillation_pulls_the_output_on_general_mixtures_back_to_the_teachers():
    """finetune.distill (learning without forgetting): no gap while the model is its teacher; a drifted
    model's gap counts only the general-noise mixtures; a few steps on it bring the output back towards
    the teacher's; the teacher is outside the state dict (checkpoints and model files unchanged)."""
    from denoiselab.training.losses import CompressedMagnitudeLoss
    from denoiselab.training.module import DenoiseModule

    torch.manual_seed(0)
    model = DenoiseModule(net={"name": "unet", "kwargs": {"base_channels": 4, "depth": 2}},
                          frontend={"n_fft": 256, "hop_length": 64}, loss=CompressedMagnitudeLoss(),
                          optimizer=lambda p: torch.optim.Adam(p, lr=1e-3))
    model.set_teacher(1.0)
    model.eval()  # the teacher runs in eval mode; so does the model here, to compare like with like
    noisy = torch.randn(2, 8000, generator=torch.Generator().manual_seed(1)) * 0.1
    first = {"noisy": noisy, "general": torch.tensor([True, False])}
    assert float(model.teacher_distance(model.denoiser(noisy), first)) < 1e-12  # (rounding: 1 item vs 2)
    with torch.no_grad():
        for p in model.denoiser.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    drifted = float(model.teacher_distance(model.denoiser(noisy), first))
    assert drifted > 0
    none = {**first, "general": torch.tensor([False, False])}
    assert float(model.teacher_distance(model.denoiser(noisy), none)) == 0.0
    louder = torch.stack([noisy[0], 3 * noisy[1]])  # the targeted mixture changes: the gap does not
    assert float(model.teacher_distance(model.denoiser(louder), {**first, "noisy": louder})) == pytest.approx(drifted)
    opt = torch.optim.Adam(model.denoiser.parameters(), lr=3e-3)
    for _ in range(20):
        opt.zero_grad()
        model.teacher_distance(model.denoiser(noisy), first).backward()
        opt.step()
    assert float(model.teacher_distance(model.denoiser(noisy), first)) < 0.5 * drifted
    assert all(p.grad is None for p in model._teacher[0].parameters())  # the teacher stays as it was
    assert not [k for k in model.state_dict() if "teacher" in k]


def test_a_distilled_fine_tune_logs_its_gap_and_bad_settings_are_refused(corpus, cache_dir, tmp_path, tiny_ckpt):
    metrics, _ = _finetune(corpus, cache_dir, tmp_path / "ft", tiny_ckpt,
                           ["trainer.max_steps=4", "model.optimizer.lr=0.01", "finetune.generic_share=0.5",
                            "finetune.builtin_pool=classic", "finetune.distill=1"])
    assert "train/loss_distill" in metrics
    ckpt = load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.ckpt")
    assert not [k for k in ckpt["state_dict"] if "teacher" in k]
    for extra, message in [(["init_from=null", "finetune.distill=1"], "give init_from"),
                           (["finetune.distill=-1"], "0 \\(off\\) or more"),
                           (["finetune.generic_share=0", "finetune.distill=1"], "generic_share above 0")]:
        with pytest.raises(UserError, match=message):
            _finetune(corpus, cache_dir, tmp_path / "bad", tiny_ckpt, extra)


def test_a_resumed_fine_tune_keeps_pulling_towards_its_start_not_its_checkpoint(corpus, cache_dir, tmp_path,
                                                                              tiny_ckpt, monkeypatch):
    """A resumed anchored and distilled run continues from its own checkpoint (the step count goes on),
    while its teacher and its anchor are the init_from weights again, not the checkpoint it resumed from."""
    from denoiselab.training.module import DenoiseModule

    kept: list[DenoiseModule] = []
    set_teacher = DenoiseModule.set_teacher
    monkeypatch.setattr(DenoiseModule, "set_teacher", lambda self, w: (set_teacher(self, w), kept.append(self)))
    extra = ["model.optimizer.lr=0.01", "finetune.generic_share=0.5", "finetune.builtin_pool=classic",
             "finetune.distill=1", "finetune.anchor=1", "auto_resume=true"]
    last = tmp_path / "ft" / "checkpoints" / "last.ckpt"
    _finetune(corpus, cache_dir, tmp_path / "ft", tiny_ckpt, ["trainer.max_steps=4", *extra])
    first = load_checkpoint(last)
    _finetune(corpus, cache_dir, tmp_path / "ft", tiny_ckpt, ["trainer.max_steps=8", *extra])
    assert first["global_step"] == 4 and load_checkpoint(last)["global_step"] == 8
    _, start, _ = read_model(tiny_ckpt)
    weights = [k for k in start if k.startswith("net.") and k.endswith("weight")]
    assert all(not torch.equal(first["state_dict"][f"denoiser.{k}"].float(), start[k].float()) for k in weights)
    module = kept[-1]
    teacher = module._teacher[0].state_dict()
    assert all(torch.equal(teacher[k].float(), v.float()) for k, v in start.items())
    names = {id(p): n for n, p in module.denoiser.named_parameters()}
    anchors = {names[id(p)]: ref for p, ref in module._anchor}
    assert set(weights) <= set(anchors)
    assert all(torch.equal(anchors[k].float(), start[k].float()) for k in anchors)


def test_distill_auto_is_on_only_with_the_builtin_pool_it_was_measured_with():
    from denoiselab.training.finetune import AUTO_DISTILL, distill_weight

    builtin = {"distill": "auto", "generic_share": 0.25, "generic_noise": "builtin"}
    assert distill_weight(builtin, has_start=True) == AUTO_DISTILL > 0
    assert distill_weight({**builtin, "generic_noise": "/lab/general_noise"}, has_start=True) == 0.0
    assert distill_weight({**builtin, "generic_share": 0.0}, has_start=True) == 0.0
    assert distill_weight(builtin, has_start=False) == 0.0  # nothing to keep: training from scratch
    assert distill_weight({**builtin, "distill": 2}, has_start=True) == 2.0  # a number is taken as given
    assert distill_weight({**builtin, "generic_noise": "/lab/general_noise", "distill": 0.5}, has_start=True) == 0.5
    with pytest.raises(UserError, match="auto or a number"):
        distill_weight({**builtin, "distill": "strong"}, has_start=True)


def test_keep_start_saves_a_blend_with_the_start_and_a_resumed_run_goes_on_from_what_it_trained(
        corpus, cache_dir, tmp_path, tiny_ckpt, monkeypatch):
    """finetune.keep_start (weight-space ensembling): with lr > 0, every reader of the checkpoint (read_model:
    evaluate, enhance, export, a later init_from) gets 0.75 x the trained weights + 0.25 x the start's,
    statistics included; a resumed run trains on from the weights it trained, not from the blend it saved."""
    from denoiselab.training.module import TRAINED_STATE_KEY, DenoiseModule

    seen: list[dict[str, torch.Tensor]] = []
    on_train_start = DenoiseModule.on_train_start
    monkeypatch.setattr(DenoiseModule, "on_train_start", lambda self: (
        seen.append({k: v.clone() for k, v in self.denoiser.state_dict().items()}), on_train_start(self)))
    extra = ["model.optimizer.lr=0.01", "finetune.keep_start=0.25", "auto_resume=true"]
    last = tmp_path / "ft" / "checkpoints" / "last.ckpt"
    _finetune(corpus, cache_dir, tmp_path / "ft", tiny_ckpt, ["trainer.max_steps=4", *extra])
    _, start, _ = read_model(tiny_ckpt)
    _, blend, made = read_model(last)
    first = load_checkpoint(last)
    trained = {k[len("denoiser."):]: v for k, v in first[TRAINED_STATE_KEY].items() if k.startswith("denoiser.")}
    assert made["init_from"]["keep_start"] == 0.25
    moved = 0
    for k, v in start.items():
        if v.is_floating_point():
            expected = 0.75 * trained[k].float() + 0.25 * v.float()
            assert torch.allclose(blend[k].float(), expected, atol=1e-6), k
            moved += not torch.equal(trained[k].float(), v.float())
        else:
            assert torch.equal(blend[k], trained[k]), k
    assert moved > 0.8 * sum(v.is_floating_point() for v in start.values())  # lr > 0: the blend is not the start
    _finetune(corpus, cache_dir, tmp_path / "ft", tiny_ckpt, ["trainer.max_steps=8", *extra])
    assert load_checkpoint(last)["global_step"] == 8
    resumed_from = seen[-1]
    assert all(torch.equal(resumed_from[k], trained[k]) for k in trained)
    _, second, _ = read_model(last)  # blended with the init_from start again, not with the first blend
    again = load_checkpoint(last)[TRAINED_STATE_KEY]
    k = next(k for k, v in start.items() if k.endswith("weight") and v.is_floating_point())
    assert torch.allclose(second[k].float(), 0.75 * again[f"denoiser.{k}"].float() + 0.25 * start[k].float(),
                          atol=1e-6)


def test_keep_start_auto_blends_only_where_no_real_general_noise_guards_the_run(corpus, cache_dir, tmp_path,
                                                                                tiny_ckpt):
    from denoiselab.training.finetune import AUTO_KEEP_START, keep_start_share

    builtin = {"keep_start": "auto", "generic_share": 0.25, "generic_noise": "builtin"}
    assert keep_start_share(builtin, has_start=True) == AUTO_KEEP_START > 0
    assert keep_start_share({**builtin, "generic_share": 0.0}, has_start=True) == AUTO_KEEP_START
    assert keep_start_share({**builtin, "generic_noise": "/lab/general_noise"}, has_start=True) == 0.0
    assert keep_start_share(builtin, has_start=False) == 0.0
    assert keep_start_share({**builtin, "keep_start": 0.5, "generic_noise": "/lab/noise"}, has_start=True) == 0.5
    for value in ("some", 1.0, -0.1):
        with pytest.raises(UserError, match="keep_start must be auto or"):
            keep_start_share({**builtin, "keep_start": value}, has_start=True)
    with pytest.raises(UserError, match="keep_start blends in the init_from weights: give init_from"):
        _finetune(corpus, cache_dir, tmp_path / "bad", tiny_ckpt, ["init_from=null", "finetune.keep_start=0.5"])


def test_a_blended_checkpoint_loaded_outside_training_keeps_its_blend():
    """Only fitting swaps the trained weights back in: testing or predicting from the file scores the blend."""
    from types import SimpleNamespace

    from denoiselab.training.losses import CompressedMagnitudeLoss
    from denoiselab.training.module import TRAINED_STATE_KEY, DenoiseModule

    model = DenoiseModule(net={"name": "unet", "kwargs": {"base_channels": 4, "depth": 2}},
                          frontend={"n_fft": 256, "hop_length": 64}, loss=CompressedMagnitudeLoss(),
                          optimizer=lambda p: torch.optim.Adam(p, lr=1e-3))
    for fn, kept in (("test", "blend"), ("predict", "blend"), ("fit", "trained")):
        model._trainer = SimpleNamespace(state=SimpleNamespace(fn=fn))
        checkpoint = {"state_dict": "blend", TRAINED_STATE_KEY: "trained"}
        model.on_load_checkpoint(checkpoint)
        assert checkpoint["state_dict"] == kept, fn


def test_lab_noise_a_single_long_recording_is_split_by_time_and_too_little_noise_is_refused(tmp_path, cache_dir,
                                                                                             caplog):
    from denoiselab.training.data.datamodule import MixtureDataModule

    rng = np.random.default_rng(0)
    (tmp_path / "speech").mkdir()
    (tmp_path / "room").mkdir()
    (tmp_path / "short").mkdir()
    for i in range(10):
        sf.write(tmp_path / "speech" / f"s{i}.wav", speechlike(3.0, 16000, rng), 16000)
    room = np.stack([noise_signal("hum", 60.0, 44100, rng)] * 2, 1)  # one minute, 44.1 kHz stereo
    sf.write(tmp_path / "room" / "hvac.flac", room, 44100)
    sf.write(tmp_path / "short" / "fan.wav", noise_signal("white", 4.0, 16000, rng), 16000)
    def module() -> MixtureDataModule:
        return MixtureDataModule(clean=tmp_path / "speech", noise=tmp_path / "room", clip_seconds=1.0,
                                 val_fraction=0.2, cache_dir=str(cache_dir), min_noise_seconds=10, generic_share=0.5,
                                 generic_noise="builtin")

    dm = module()
    with caplog.at_level("WARNING"):
        dm.setup()
    assert "give finetune.generic_noise=DIR" in caplog.text  # the builtin pool's measured weakness is said
    train_noise, val_noise = dm.train_set.noise[0], dm.val_set.noise[0]
    assert len(train_noise) == 48 * 16000 and len(val_noise) == 12 * 16000  # last 20 % held out
    items = [dm.train_set[k] for k in range(200)]
    types = [it["noise_type"] for it in items]
    share = np.mean([t != "hvac" for t in types])
    assert [bool(it["general"]) for it in items] == [t != "hvac" for t in types]  # what distillation reads
    assert 0.4 < share < 0.6 and "hum" in types  # general noise in about half of the mixtures
    assert {"engine", "babble"} <= set(types)  # the everyday kinds, and babble of the run's own speech
    val_types = [dm.val_set[k]["noise_type"] for k in range(len(dm.val_set))]
    rerun = module()  # another run: its validation mixtures, general noise included, must be the same
    rerun.setup()
    assert len(val_types) >= 6 and all(torch.equal(dm.val_set[k]["noise"], rerun.val_set[k]["noise"])
                                       for k in range(len(dm.val_set)))
    assert 0.2 < np.mean([t != "hvac" for t in val_types]) < 0.8  # validation sees forgetting too
    with pytest.raises(UserError, match="holds 4.0 s of usable noise.*at least 10 s"):
        MixtureDataModule(clean=tmp_path / "speech", noise=tmp_path / "short", clip_seconds=1.0,
                          cache_dir=str(cache_dir), min_noise_seconds=10).setup()


def test_a_silent_held_out_tail_is_said_to_make_validation_say_little(tmp_path, cache_dir, caplog):
    """A take that ends in silence (a padded clip, a recorder left running) leaves its held-out end silent:
    those validation mixtures are nearly clean, and the before/after scores would mislead. Said once, naming
    a take; takes that are noise to the end say nothing."""
    from denoiselab.training.data.datamodule import MixtureDataModule

    rng = np.random.default_rng(4)
    for folder in ("speech", "steady", "tailed"):
        (tmp_path / folder).mkdir()
    for i in range(6):
        sf.write(tmp_path / "speech" / f"s{i}.wav", speechlike(3.0, 16000, rng), 16000)
    for i in range(3):
        x = noise_signal("pink", 5.0, 16000, rng)
        sf.write(tmp_path / "steady" / f"take{i}.wav", x, 16000)
        if i < 2:  # the last 1.5 s digitally silent: the whole held-out fifth, and some of training
            x = np.concatenate([x[:56000], np.zeros(24000, np.float32)])
        sf.write(tmp_path / "tailed" / f"take{i}.wav", x, 16000)

    def warnings(noise: str) -> str:
        caplog.clear()
        with caplog.at_level("WARNING"):
            MixtureDataModule(clean=tmp_path / "speech", noise=tmp_path / noise, clip_seconds=1.0, val_fraction=0.2,
                              cache_dir=str(cache_dir), min_noise_seconds=10).setup()
        return caplog.text

    assert "quieter" not in warnings("steady")
    said = warnings("tailed")
    assert "held-out end of 2 of 3 recording(s) is over 20 dB quieter" in said and "take0.wav" in said
    assert "data.val_noise=DIR" in said


def test_a_handful_of_noise_takes_is_split_by_time_so_every_take_is_learnt_from(tmp_path, cache_dir, caplog):
    """Five takes with val_fraction 0.2: a by-file split would hold out one whole take (a fifth of the
    lab's noise, never learnt); instead each take's last 20 % is validation. Ten takes: by file. Unreadable
    files count for neither: the log counts the usable takes, and three takes among twelve broken files are
    three takes (split by time), not fifteen files to split by file."""
    from denoiselab.training.data.datamodule import MixtureDataModule

    rng = np.random.default_rng(3)
    for folder, takes in (("speech", 10), ("five", 5), ("ten", 10), ("three", 3)):
        (tmp_path / folder).mkdir()
        for i in range(takes):
            x = speechlike(3.0, 16000, rng) if folder == "speech" else noise_signal("pink", 4.0, 16000, rng)
            sf.write(tmp_path / folder / f"take{i}.wav", x, 16000)
    sf.write(tmp_path / "five" / "blip.wav", noise_signal("white", 0.5, 16000, rng), 16000)  # too short to split
    for folder, broken in (("five", 1), ("three", 12)):
        for i in range(broken):
            (tmp_path / folder / f"broken{i}.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")

    def module(noise: str) -> MixtureDataModule:
        dm = MixtureDataModule(clean=tmp_path / "speech", noise=tmp_path / noise, clip_seconds=1.0,
                               val_fraction=0.2, cache_dir=str(cache_dir), min_noise_seconds=10)
        dm.setup()
        return dm

    with caplog.at_level("INFO"):
        dm = module("five")
    said = "noise: 6 usable recording(s); the last 20 % of 5 of them is held out for validation (1 too short"
    assert said in caplog.text
    train = {Path(t.path).name: len(t) for t in dm.train_set.noise}
    val = {Path(t.path).name: len(t) for t in dm.val_set.noise}
    takes = {f"take{i}.wav" for i in range(5)}
    assert set(train) == takes | {"blip.wav"} and set(val) == takes
    assert all(train[k] == int(0.8 * 4 * 16000) and val[k] == 4 * 16000 - train[k] for k in takes)
    assert train["blip.wav"] == 8000  # whole, in training
    assert len({t.path for t in dm.val_set.clean} & {t.path for t in dm.train_set.clean}) == 0  # speech: by file
    dm = module("ten")
    train_files, val_files = {t.path for t in dm.train_set.noise}, {t.path for t in dm.val_set.noise}
    assert len(train_files) == 8 and len(val_files) == 2 and not train_files & val_files
    dm = module("three")
    takes = {f"take{i}.wav" for i in range(3)}
    assert {Path(t.path).name for t in dm.train_set.noise} == {Path(t.path).name for t in dm.val_set.noise} == takes


@pytest.mark.slow
def test_the_finetune_interface_as_documented(corpus, tmp_path, tiny_ckpt):
    from denoiselab.core.model_files import load_denoiser, save_inference

    model_file = save_inference(load_denoiser(tiny_ckpt), tmp_path / "lab_start.pt")  # an exported file works too
    out = tmp_path / "OUT"
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = subprocess.run([sys.executable, "-m", "denoiselab.cli.train", "experiment=finetune",
                           f"init_from={model_file}", f"data.clean={corpus['clean']}", f"data.noise={corpus['noise']}",
                           "trainer.max_time=00:00:00:10", "logger=csv", f"hydra.run.dir={out}", "data.clip_seconds=1",
                           "finetune.min_noise_seconds=5", "trainer.val_check_interval=3", "data.num_workers=0",
                           f"paths.cache_dir={tmp_path / 'cache'}"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    best = sorted((out / "checkpoints").glob("best*.ckpt"))
    assert (out / "checkpoints" / "last.ckpt").is_file() and best
    # the recipe's lr decays over trainer.max_time: the final state was trained at a fraction of the peak
    last = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert last["optimizer_states"][0]["param_groups"][0]["lr"] < 0.5 * 2e-3
    assert "the last checkpoint is the model to use" in proc.stdout
    # and where a model is asked for by its run (--ckpt OUT, ckpt=OUT, load_model(OUT)), that is what it gets
    from denoiselab.core.model_files import resolve_model_path

    assert resolve_model_path(out) == resolve_model_path(out / "checkpoints") == out / "checkpoints" / "last.ckpt"
    from denoiselab.cli.enhance import main as enhance

    src = tmp_path / "in.wav"
    sf.write(src, speechlike(1.5, 16000, np.random.default_rng(3)), 16000)
    assert enhance([str(src), "--ckpt", str(best[0]), "--out", str(tmp_path / "enh"), "--quiet"]) == 0
    ev = subprocess.run([sys.executable, "-m", "denoiselab.cli.evaluate", f"ckpt={best[0]}",
                         f"data.clean={corpus['val_clean']}", f"data.noise={corpus['val_noise']}", "data.snrs=[5]",
                         "metrics=[si_sdr]", "plots=false", f"hydra.run.dir={tmp_path / 'ev'}"],
                        capture_output=True, text=True, env=env, timeout=600)
    assert ev.returncode == 0, ev.stderr[-2000:]


def test_a_run_limited_only_by_the_clock_trains_until_the_clock(tmp_path):
    """experiment=finetune stops on its time budget, not on Lightning's default of 1000 epochs: a lab's
    few campaign references make 2-step epochs, and the device workflow's 5-minute run once stopped at
    step 2000 after 3.5 minutes with its time-decayed lr still high. A step budget keeps its own limit."""
    from denoiselab.training.train import epoch_limit

    assert epoch_limit(compose_train(["experiment=finetune"], tmp_path)) == {"max_epochs": -1}
    assert epoch_limit(compose_train(["experiment=finetune", "trainer.max_time=null", "time_budget=300"],
                                     tmp_path)) == {"max_epochs": -1}
    assert epoch_limit(compose_train(["experiment=finetune", "trainer.max_steps=500"], tmp_path)) == {}
    assert epoch_limit(compose_train(["trainer.max_epochs=3", "trainer.max_time=00:00:01:00"], tmp_path)) == {}
    assert epoch_limit(compose_train(["experiment=default_model"], tmp_path)) == {}


def test_each_fine_tuning_recipe_is_the_one_measured_for_it(tmp_path):
    """experiment=finetune (a lab's own noise) mixes a quarter of general noise and no device-path
    augmentations; experiment=device_eval, built on it, keeps the augmentations its model was trained with
    (benchmarks/results/tune_finetune.md, device_finetune_share025_noaug_*.md)."""
    lab = compose_train(["experiment=finetune"], tmp_path / "lab")
    assert lab.finetune.generic_share == 0.25 and lab.data.get("augment") is None
    assert lab.finetune.distill == "auto"  # kept to its output on the builtin pool (tune_builtin_full_distill1.md)
    assert lab.finetune.keep_start == "auto"  # blended with its start there too (tune_keep_start.md)
    assert set(lab.loss.terms) == {"compressed_complex", "sisdr"}  # phase-aware (tune_ft_complex.md)
    device = compose_train(["experiment=device_eval"], tmp_path / "device")
    assert device.data.augment._target_.endswith("DeviceAugment") and device.finetune.generic_share == 0.0
    assert set(device.loss.terms) == {"compressed", "sisdr"}  # as device_eval.pt was trained
