import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from denoiselab.cli.config import CONFIG_DIR
from denoiselab.core.checkpoints import load_checkpoint
from denoiselab.training.instantiate import close_loggers
from denoiselab.training.losses import NoiseMaskLoss
from denoiselab.training.module import CKPT_KEY, DenoiseModule
from denoiselab.training.train import run

from hydra_helpers import TINY_NET, compose_train, corpus_overrides


def _train(corpus, cache_dir, out, extra=(), net="unet"):
    cfg = compose_train(["experiment=tiny", f"model/net={net}", *TINY_NET[net],
                         *corpus_overrides(corpus, cache_dir), *extra], out)
    try:
        return run(cfg)
    finally:
        close_loggers()  # what the CLI's task wrapper does after every job


@pytest.mark.parametrize("net", sorted(TINY_NET))
def test_each_backbone_trains_and_writes_checkpoints_and_metrics(corpus, cache_dir, tmp_path, net):
    metrics = _train(corpus, cache_dir, tmp_path / "run", ["trainer.max_steps=6"], net=net)
    ckpts = tmp_path / "run" / "checkpoints"
    assert (ckpts / "last.ckpt").is_file()
    assert list(ckpts.glob("best*.ckpt"))
    rows = list(csv.DictReader(open(next((tmp_path / "run" / "csv").glob("version_*/metrics.csv")))))
    assert any(r.get("val/si_sdr") for r in rows) and any(r.get("train/loss_step") for r in rows)
    assert "val/si_sdr" in metrics and torch.isfinite(torch.tensor(metrics["val/si_sdr"]))


def test_loss_falls_when_overfitting_a_fixed_batch():
    torch.manual_seed(0)
    model = DenoiseModule(net={"name": "unet", "kwargs": {"base_channels": 8, "depth": 2}},
                          frontend={"n_fft": 256, "hop_length": 64, "norm_warmup_batches": 1},
                          loss=NoiseMaskLoss(), optimizer=lambda params: torch.optim.Adam(params, lr=3e-3))
    g = torch.Generator().manual_seed(0)
    t = torch.arange(8000) / 16000
    clean = (0.3 * torch.sin(2 * torch.pi * 220 * t) * torch.sin(2 * torch.pi * 3 * t).abs()).repeat(2, 1)
    noise = 0.2 * torch.randn(2, 8000, generator=g)
    batch = {"noisy": clean + noise, "clean": clean, "noise": noise}
    opt = model.configure_optimizers()
    model.log = lambda *a, **k: None
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = model.training_step(batch, 0)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(corpus, cache_dir, tmp_path):
    # 12 clean clips of 1 s / batch 4 -> 3 steps per epoch; stop after 2 epochs, resume to 4.
    _train(corpus, cache_dir, tmp_path / "full", ["trainer.max_steps=12"])
    _train(corpus, cache_dir, tmp_path / "half", ["trainer.max_steps=6"])
    _train(corpus, cache_dir, tmp_path / "half", ["trainer.max_steps=12",
                                                  f"ckpt_path={tmp_path / 'half' / 'checkpoints' / 'last.ckpt'}"])
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.ckpt")
    b = load_checkpoint(tmp_path / "half" / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 12
    for k, v in a["state_dict"].items():
        assert torch.allclose(v.float(), b["state_dict"][k].float(), atol=1e-6), k
    opt_a, opt_b = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    for k in opt_a:
        assert torch.allclose(opt_a[k]["exp_avg"], opt_b[k]["exp_avg"], atol=1e-6)


def test_auto_resume_continues_in_the_same_run_dir(corpus, cache_dir, tmp_path):
    out = tmp_path / "run"
    _train(corpus, cache_dir, out, ["trainer.max_steps=3"])
    _train(corpus, cache_dir, out, ["trainer.max_steps=6", "auto_resume=true"])
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == 6
    # resuming it as another model failed inside load_state_dict with a screen of size mismatches
    from denoiselab.core.errors import UserError

    with pytest.raises(UserError, match=r"holds another model \(net.name: unet in the checkpoint, lstm now; "):
        _train(corpus, cache_dir, tmp_path / "other", ["trainer.max_steps=9",
                                                        f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}"], net="lstm")
    with pytest.raises(UserError, match="frontend.hop_length: 64 in the checkpoint, 128 now"):
        _train(corpus, cache_dir, tmp_path / "other", ["trainer.max_steps=9", "model.frontend.hop_length=128",
                                                        f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}"])


def test_checkpoints_load_with_weights_only_and_carry_the_model_description(corpus, cache_dir, tmp_path):
    _train(corpus, cache_dir, tmp_path / "run", ["trainer.max_steps=3"])
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    spec = ckpt[CKPT_KEY]["denoiser"]
    kwargs = {"base_channels": 4, "depth": 2, "time_pool": True, "dropout": 0.0}
    assert spec["net"] == {"name": "unet", "kwargs": kwargs}
    assert spec["sample_rate"] == 16000 and spec["frontend"]["n_fft"] == 256


def test_truncated_last_checkpoint_falls_back_to_the_previous_good_one(corpus, cache_dir, tmp_path):
    out = tmp_path / "run"
    _train(corpus, cache_dir, out, ["trainer.max_steps=6"])
    last = out / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    metrics = _train(corpus, cache_dir, out, ["trainer.max_steps=9", "auto_resume=true"])
    assert load_checkpoint(last)["global_step"] == 9
    assert metrics


EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def _declared(experiment: str) -> dict[str, str]:
    """The config-group choices an experiment file (and the experiments it builds on) declares."""
    import yaml

    out: dict[str, str] = {}
    for entry in yaml.safe_load((CONFIG_DIR / "experiment" / f"{experiment}.yaml").read_text()).get("defaults", []):
        if isinstance(entry, str):
            out = {**_declared(entry), **out}
        else:
            for key, value in entry.items():
                out[key.removeprefix("override /")] = value
    return out


@pytest.fixture(scope="module")
def room_cache(tmp_path_factory) -> Path:
    """One room bank for the experiments that simulate rooms: the first builds it, the others load it, as a
    user's second run does."""
    return tmp_path_factory.mktemp("room_cache")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_survives_fast_dev_run(corpus, cache_dir, tmp_path, experiment, room_cache):
    # 8 rooms, not the recipe's 400 (45 s to simulate on 2 cores): a smoke run draws a handful of them
    sim = _declared(experiment).get("data/rooms") == "sim"
    rooms = [f"data.rooms.cache_dir={room_cache}", "data.rooms.rooms=8"] if sim else []
    cfg = compose_train([f"experiment={experiment}", *corpus_overrides(corpus, cache_dir),
                         "trainer.fast_dev_run=true", "data.batch_size=2", "data.num_workers=0",
                         "finetune.min_noise_seconds=0", *rooms], tmp_path / "run")
    choices = cfg.hydra.runtime.choices
    for group, option in _declared(experiment).items():  # the recipe is what the file says it is
        assert choices[group] == option, (group, choices[group], option)
    metrics = run(cfg)
    assert torch.isfinite(torch.tensor(metrics["val/loss"])) and torch.isfinite(torch.tensor(metrics["val/si_sdr"]))
    assert (tmp_path / "run" / "metrics.jsonl").is_file()


@pytest.mark.slow
def test_multirun_over_backbones_gives_separate_dirs_and_wandb_runs(corpus, cache_dir, tmp_path):
    sweep = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    cmd = [sys.executable, "-m", "denoiselab.cli.train", "-m", "model/net=unet,resnet,lstm", "experiment=tiny",
           "logger=wandb", "trainer.max_steps=2", "data.max_val_items=4", *corpus_overrides(corpus, cache_dir),
           f"hydra.sweep.dir={sweep}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [j.name for j in jobs] == ["0_unet", "1_resnet", "2_lstm"]
    ids = set()
    for job in jobs:
        assert (job / "checkpoints" / "last.ckpt").is_file()
        runs = list((job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, runs
        run_id = (job / "wandb_id.txt").read_text()
        assert runs[0].name.endswith(run_id)
        ids.add(run_id)
    assert len(ids) == 3


def test_resume_continues_the_same_wandb_run(corpus, cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    first, second = tmp_path / "first", tmp_path / "second"
    _train(corpus, cache_dir, first, ["trainer.max_steps=3", "logger=wandb"])
    run_id = (first / "wandb_id.txt").read_text()
    assert load_checkpoint(first / "checkpoints" / "last.ckpt")[CKPT_KEY]["wandb_id"] == run_id
    _train(corpus, cache_dir, second, ["trainer.max_steps=6", "logger=wandb",
                                       f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"])
    assert (second / "wandb_id.txt").read_text() == run_id
    assert list((second / "wandb").glob(f"offline-run-*-{run_id}"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("net", sorted(TINY_NET))
def test_every_experiment_works_with_every_backbone(corpus, cache_dir, tmp_path, experiment, net):
    """Experiments must not pin backbone-specific keys, or `-m model/net=...` sweeps break."""
    import hydra

    from denoiselab.training.losses import NoiseMaskLoss

    cfg = compose_train([f"experiment={experiment}", f"model/net={net}", *corpus_overrides(corpus, cache_dir)],
                        tmp_path / "run")
    model = hydra.utils.instantiate(cfg.model, loss=NoiseMaskLoss())
    assert model.denoiser.net_name == net


def test_onecycle_schedule_warms_up_then_decays_per_step(corpus, cache_dir, tmp_path):
    """model/scheduler=onecycle steps the lr every optimizer step over trainer.max_steps and its
    position is in the checkpoint (so a resume continues the same curve)."""
    _train(corpus, cache_dir, tmp_path / "run", ["trainer.max_steps=6", "model/scheduler=onecycle",
                                                 "model.optimizer.lr=0.01"])
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    sched = ckpt["lr_schedulers"][0]
    assert sched["last_epoch"] == 6 and sched["total_steps"] == 6
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] < 0.1 * 0.01  # decayed, not constant
    cfg = compose_train(["experiment=tiny", "model/scheduler=onecycle", "trainer.max_steps=100",
                         "model.optimizer.lr=0.01"], tmp_path / "unit")
    import hydra

    model = hydra.utils.instantiate(cfg.model, loss=NoiseMaskLoss())
    conf = model.configure_optimizers()
    opt, scheduler = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert conf["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.01 / 25) and max(lrs) == pytest.approx(0.01)
    assert lrs.index(max(lrs)) == 4 and lrs[-1] < 0.01 / 100  # 5 % warm-up, then decay


def test_time_schedule_warms_up_by_steps_then_decays_over_the_budget_it_is_given():
    """cosine_time: warm-up counts optimizer steps, the decay counts wall-clock seconds from
    start_clock (a fake clock here), reaching final_factor at the end of the budget and staying there."""
    from denoiselab.training.schedules import WarmupCosineByTime

    now = [0.0]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    sched = WarmupCosineByTime(opt, warmup_steps=4, start_factor=0.05, final_factor=0.02, clock=lambda: now[0])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * 0.05)
    for _ in range(4):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)  # warmed up; no budget yet: constant
    sched.start_clock(100.0)
    lrs = {}
    for t in (0.0, 50.0, 100.0, 250.0):
        now[0] = t
        opt.step()
        sched.step()
        lrs[t] = opt.param_groups[0]["lr"]
    assert lrs[0.0] == pytest.approx(0.01)
    assert lrs[50.0] == pytest.approx(0.01 * (0.02 + 0.98 * 0.5))
    assert lrs[100.0] == pytest.approx(0.01 * 0.02) and lrs[250.0] == pytest.approx(0.01 * 0.02)
    state = sched.state_dict()
    assert "clock" not in state and "budget" not in state  # loadable with weights_only, budget per invocation
    again = WarmupCosineByTime(opt, warmup_steps=4, clock=lambda: now[0])
    again.load_state_dict(state)
    assert again.last_epoch == 8 and again.factor() == pytest.approx(1.0)  # no second warm-up; new clock
    with pytest.raises(ValueError, match="time budget must be > 0"):
        sched.start_clock(0)


def test_time_schedule_gets_what_this_invocation_has_left():
    """The budget is the smaller of time_budget and what is left of trainer.max_time."""
    import lightning as L

    from denoiselab.training.callbacks import InvocationBudget
    from denoiselab.training.schedules import invocation_time_left

    both = L.Trainer(max_time="00:00:10:00", callbacks=[InvocationBudget(30)], logger=False,
                     enable_checkpointing=False, enable_progress_bar=False)
    assert invocation_time_left(both) == pytest.approx(30.0)
    timer_only = L.Trainer(max_time="00:00:10:00", logger=False, enable_checkpointing=False,
                           enable_progress_bar=False)
    assert 590.0 < invocation_time_left(timer_only) <= 600.0
    assert invocation_time_left(L.Trainer(max_steps=5, logger=False, enable_checkpointing=False)) is None


def test_time_schedule_trains_and_resumes_from_its_checkpoint(corpus, cache_dir, tmp_path):
    """A time-budgeted run with model/scheduler=cosine_time writes its schedule into the checkpoint and
    a resumed run continues the step count (the checkpoint loads with weights_only)."""
    out = tmp_path / "run"
    extra = ["model/scheduler=cosine_time", "model.scheduler.warmup_steps=2", "time_budget=600",
             "model.optimizer.lr=0.01", "auto_resume=true"]
    _train(corpus, cache_dir, out, ["trainer.max_steps=3", *extra])
    _train(corpus, cache_dir, out, ["trainer.max_steps=6", *extra])
    ckpt = load_checkpoint(out / "checkpoints" / "last.ckpt")
    sched = ckpt["lr_schedulers"][0]
    assert sched["last_epoch"] == 6 and "budget" not in sched
    lr = ckpt["optimizer_states"][0]["param_groups"][0]["lr"]
    assert 0.009 < lr <= 0.01  # warmed up; seconds into a 600 s budget barely decayed


def test_plateau_scheduler_composes_with_the_monitored_metric(tmp_path):
    import hydra

    cfg = compose_train(["experiment=tiny", "model/scheduler=plateau"], tmp_path / "run")
    model = hydra.utils.instantiate(cfg.model, loss=NoiseMaskLoss())
    conf = model.configure_optimizers()
    assert conf["lr_scheduler"]["monitor"] == "val/si_sdr" and conf["lr_scheduler"]["scheduler"].mode == "max"


def test_a_fresh_run_never_overwrites_an_earlier_runs_checkpoints(corpus, cache_dir, tmp_path):
    out = tmp_path / "run"
    _train(corpus, cache_dir, out, ["trainer.max_steps=3"])
    before = (out / "checkpoints" / "last.ckpt").read_bytes()
    with pytest.raises(FileExistsError, match="already holds checkpoints of an earlier run.*auto_resume=true"):
        _train(corpus, cache_dir, out, ["trainer.max_steps=3"])
    assert (out / "checkpoints" / "last.ckpt").read_bytes() == before


def test_last_checkpoint_is_the_latest_validation_even_without_improvement(corpus, cache_dir, tmp_path):
    """Lightning >= 2.5 writes ModelCheckpoint's own last.ckpt only together with a top-k file; ours
    must hold the newest state regardless (save_top_k=0: no top-k file is ever written)."""
    out = tmp_path / "run"
    _train(corpus, cache_dir, out, ["trainer.max_steps=6", "callbacks.model_checkpoint.save_top_k=0"])
    assert not list((out / "checkpoints").glob("best*.ckpt"))
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == 6


def test_last_checkpoint_holds_the_steps_after_the_last_validation(corpus, cache_dir, tmp_path):
    """max_steps inside an epoch (3 steps per epoch here): last.ckpt is the final state, step 4."""
    out = tmp_path / "run"
    _train(corpus, cache_dir, out, ["trainer.max_steps=4"])
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == 4


def test_best_checkpoint_is_the_monitored_best_of_a_real_run_even_after_moving_it(corpus, cache_dir, tmp_path):
    from denoiselab.core.checkpoints import best_checkpoint

    out = tmp_path / "run"
    _train(corpus, cache_dir, out, ["trainer.max_steps=6"])
    state = next(s for s in load_checkpoint(out / "checkpoints" / "last.ckpt")["callbacks"].values()
                 if s.get("monitor") == "val/si_sdr")
    best = best_checkpoint(out)
    assert best == Path(state["best_model_path"]) and best.name.startswith("best")
    moved = tmp_path / "moved"
    out.rename(moved)  # the recorded absolute path is stale now: found by name
    assert best_checkpoint(moved) == moved / "checkpoints" / best.name
    from denoiselab.core.model_files import resolve_model_path

    # a run without a decayed lr stands for its monitored best where a model is asked for by its run dir
    assert resolve_model_path(moved) == moved / "checkpoints" / best.name


def _fake_ckpt(path: Path, step: int, current: float, best_path: str | None, mode: str = "max") -> None:
    state = {"monitor": "val/si_sdr", "mode": mode, "best_k_models": {}, "current_score": torch.tensor(current),
             "best_model_path": best_path or ""}
    torch.save({"global_step": step, "state_dict": {}, "callbacks": {"ModelCheckpoint{'monitor': 'val/si_sdr'}": state,
                                                                     "LastCheckpoint{}": {"monitor": None}}}, path)


@pytest.mark.parametrize("mode", ["max", "min"])
def test_best_checkpoint_prefers_the_recorded_best_over_the_newest(tmp_path, mode):
    from denoiselab.core.checkpoints import best_checkpoint

    d = tmp_path / "checkpoints"
    d.mkdir()
    good, bad = (9.0, 2.0) if mode == "max" else (2.0, 9.0)
    _fake_ckpt(d / "best-a.ckpt", 10, good, None, mode)   # older, better
    _fake_ckpt(d / "best-b.ckpt", 20, bad, None, mode)    # newer, worse
    # without last.ckpt: the files' own scores decide
    assert best_checkpoint(tmp_path) == d / "best-a.ckpt"
    # last.ckpt (highest step) records the best by an absolute path from another machine
    _fake_ckpt(d / "last.ckpt", 30, bad, "/elsewhere/run/checkpoints/best-a.ckpt", mode)
    assert best_checkpoint(d) == d / "best-a.ckpt"
    assert best_checkpoint(tmp_path / "nothing") is None


@pytest.mark.parametrize("given,lightning", [("00:00:05:00", "00:00:05:00"), ("00:05:00", "00:00:05:00"),
                                             ("5:00", "00:00:05:00"), (300, "00:00:05:00"), ("90", "00:00:01:30"),
                                             ("1:02:03:04", "01:02:03:04")])
def test_max_time_in_the_formats_people_write_reaches_lightning_as_dd_hh_mm_ss(given, lightning):
    """Lightning's parser takes DD:HH:MM:SS only and fails on 00:05:00 with a traceback: HH:MM:SS, MM:SS and
    seconds are turned into it, anything else is refused naming the key."""
    from omegaconf import OmegaConf

    from denoiselab.core.errors import UserError
    from denoiselab.training.train import normalize_max_time

    cfg = OmegaConf.create({"trainer": {"max_time": given}})
    normalize_max_time(cfg)
    assert cfg.trainer.max_time == lightning
    for bad in ("5min", 0, "00:0x:00", "-00:00:01"):  # the last trained for 1 s: its sign was dropped
        with pytest.raises(UserError, match=f"trainer.max_time={bad}: give DD:HH:MM:SS"):
            normalize_max_time(OmegaConf.create({"trainer": {"max_time": bad}}))
    kept = OmegaConf.create({"trainer": {"max_time": {"minutes": 5}}})
    normalize_max_time(kept)
    assert kept.trainer.max_time == {"minutes": 5}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_a_gpu_asked_for_where_there_is_none_is_refused_in_one_line(tmp_path):
    """Lightning's 'No supported gpu backend found!' came wrapped in Hydra's instantiation traceback."""
    from denoiselab.core.errors import UserError
    from denoiselab.training.train import check_training_settings

    for accelerator in ("gpu", "cuda"):
        cfg = compose_train([f"trainer.accelerator={accelerator}"], tmp_path / "run")
        with pytest.raises(UserError, match=f"trainer.accelerator={accelerator}: no CUDA GPU is available here"):
            check_training_settings(cfg)
    check_training_settings(compose_train(["trainer.accelerator=auto"], tmp_path / "run"))
