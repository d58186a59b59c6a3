"""Multi-process training, cluster/sweeper configs, surviving SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from denoiselab.core.checkpoints import load_checkpoint

from hydra_helpers import TINY_NET, compose_train, corpus_overrides

ENV = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}


def _cli(args, timeout=600, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "denoiselab.cli.train", *args], env=env or ENV, capture_output=True,
                          text=True, timeout=timeout, **kw)


@pytest.mark.slow
def test_ddp_on_cpu_trains_the_default_backbone_and_keeps_the_ranks_identical(corpus, cache_dir, tmp_path):
    """trainer=ddp on CPU (gloo) with the default backbone (U-Net with BatchNorm, which sync BatchNorm
    refuses on CPU) and lr > 0: the run says it keeps per-rank BatchNorm statistics, the gradient
    all-reduce keeps both ranks' parameters identical while training moves them, and rank 0 alone
    writes one checkpoint set."""
    run_dir = tmp_path / "ddp"
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), ENV.get("PYTHONPATH", "")])}
    ddp = _cli(["experiment=tiny", *TINY_NET["unet"], *corpus_overrides(corpus, cache_dir), "trainer.max_steps=3",
                "callbacks.quality=null", "data.max_val_items=8", "model.optimizer.lr=0.01", "trainer=ddp",
                "trainer.devices=2", "trainer.accelerator=cpu", f"hydra.run.dir={run_dir}",
                "+callbacks.dump._target_=probes.DumpParameters", f"+callbacks.dump.out_dir={run_dir / 'params'}"],
               env=env)
    out = ddp.stderr + ddp.stdout
    assert ddp.returncode == 0, out[-3000:]
    assert "MEMBER: 2/2" in out  # two processes really ran
    assert "sync_batchnorm=true needs a GPU" in out
    p = {f"{r}_{w}": torch.load(run_dir / "params" / f"rank{r}_{w}.pt") for r in (0, 1) for w in ("start", "end")}
    assert p["0_start"].keys() == p["1_end"].keys() and len(p["0_end"]) > 10
    for k in p["0_end"]:
        assert torch.equal(p["0_start"][k], p["1_start"][k]), k  # same init on both ranks
        assert torch.equal(p["0_end"][k], p["1_end"][k]), k      # same updates: gradients were all-reduced
    moved = [k for k in p["0_end"] if not torch.equal(p["0_start"][k], p["0_end"][k])]
    assert len(moved) > 0.9 * len(p["0_end"])  # lr > 0: training changed (nearly) every tensor
    ckpts = sorted(q.name for q in (run_dir / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and len([c for c in ckpts if c.startswith("best")]) == 1
    assert not list(run_dir.glob("**/*-v1.ckpt"))  # one checkpoint set, written by rank 0
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 3


@pytest.mark.parametrize("override", ["hydra/launcher=slurm", "hydra/launcher=local", "hydra/launcher=submitit_slurm",
                                      "hparams_search=optuna"])
def test_cluster_and_search_configs_compose(override, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    from omegaconf import OmegaConf

    cfg = compose_train([override], tmp_path)
    hydra_cfg = OmegaConf.to_container(cfg.hydra, resolve=False)
    if "launcher" in override:
        assert "submitit_launcher" in hydra_cfg["launcher"]["_target_"]
    if override == "hydra/launcher=slurm":
        assert hydra_cfg["launcher"]["gpus_per_node"] == 1 and hydra_cfg["launcher"]["partition"] is None
        # the batch script asks SLURM for the signal Lightning's SLURMEnvironment listens to
        from lightning.pytorch.plugins.environments import SLURMEnvironment
        from submitit.slurm.slurm import _make_sbatch_string

        launcher = hydra_cfg["launcher"]
        sbatch = _make_sbatch_string(command="python -m denoiselab.cli.train", folder=str(tmp_path),
                                     additional_parameters=launcher["additional_parameters"],
                                     signal_delay_s=launcher["signal_delay_s"], gpus_per_node=1)
        assert f"#SBATCH --signal={SLURMEnvironment().requeue_signal.name.removeprefix('SIG')}@120" in sbatch
        assert "#SBATCH --requeue" in sbatch
    if override == "hparams_search=optuna":
        assert hydra_cfg["sweeper"]["_target_"].endswith("OptunaSweeper")
        searched = set(hydra_cfg["sweeper"]["params"])
        assert {"model.optimizer.lr", "model.net.base_channels", "loss.weights.mrstft"} <= searched
        assert cfg.loss._target_.endswith("WeightedSum")


@pytest.mark.slow
def test_optuna_sweep_completes_three_trials(corpus, cache_dir, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "optuna"
    proc = _cli(["hparams_search=optuna", "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.n_startup_trials=3",
                 "experiment=tiny", "trainer.max_steps=2", "data.max_val_items=4", "callbacks.quality=null",
                 "model.net.depth=2", *corpus_overrides(corpus, cache_dir), f"hydra.sweep.dir={sweep}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = (sweep / "optimization_results.yaml").read_text()
    assert "best_value" in result and "model.optimizer.lr" in result
    assert len([p for p in sweep.iterdir() if (p / "checkpoints" / "last.ckpt").exists()]) == 3


def _resume_common(corpus, cache_dir) -> list[str]:
    return ["experiment=tiny", *TINY_NET["unet"], *corpus_overrides(corpus, cache_dir), "trainer.max_steps=12",
            "callbacks.quality=null", "trainer.deterministic=true", "callbacks.rich_progress_bar=null"]


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory) -> Path:
    """12 steps in one go: the reference the interrupted runs must reproduce."""
    out = tmp_path_factory.mktemp("uninterrupted")
    full = _cli([*_resume_common(corpus, out / "cache"), "callbacks.last_checkpoint.every_n_train_steps=1",
                 f"hydra.run.dir={out / 'run'}"])
    assert full.returncode == 0, full.stderr[-2000:]
    return out / "run" / "checkpoints" / "last.ckpt"


def _assert_same_weights(a_path: Path, b_path: Path) -> None:
    a, b = load_checkpoint(a_path), load_checkpoint(b_path)
    assert a["global_step"] == b["global_step"] == 12
    for k, v in a["state_dict"].items():
        assert torch.allclose(v.float(), b["state_dict"][k].float(), atol=1e-5), k


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(corpus, uninterrupted, tmp_path):
    common = [*_resume_common(corpus, tmp_path / "cache"), "callbacks.last_checkpoint.every_n_train_steps=1"]
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "denoiselab.cli.train", *common, f"hydra.run.dir={run_dir}"],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    step = 0
    while time.time() < deadline and proc.poll() is None:
        if last.exists():
            try:
                step = load_checkpoint(last)["global_step"]
            except Exception:
                step = 0
            if step >= 4:
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 4 <= step < 12, step
    resumed = _cli([*common, f"hydra.run.dir={run_dir}", "auto_resume=true"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_same_weights(uninterrupted, last)


@pytest.mark.slow
def test_a_run_stopped_on_an_epochs_last_batch_resumes_into_the_next_epoch(corpus, uninterrupted, tmp_path):
    """The checkpoint of an epoch's last batch says the whole epoch was consumed; the resumed run must start
    the next epoch at its first batch (it used to skip that epoch's batches too: a kill that landed there,
    as the SIGKILL test's sometimes does under load, resumed onto another trajectory)."""
    common = [*_resume_common(corpus, tmp_path / "cache"), "callbacks.last_checkpoint.every_n_train_steps=1"]
    run_dir = tmp_path / "stopped"
    first = _cli([*common, "trainer.max_steps=6", f"hydra.run.dir={run_dir}"])
    assert first.returncode == 0, first.stderr[-2000:]
    mid = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    loader = mid["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert mid["global_step"] == 6 and loader == {"epoch": 1, "batches": 3}  # the tiny corpus: 3-batch epochs
    resumed = _cli([*common, f"hydra.run.dir={run_dir}", "auto_resume=true"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_same_weights(uninterrupted, run_dir / "checkpoints" / "last.ckpt")


@pytest.mark.slow
def test_slurm_requeue_signal_saves_and_the_requeued_job_resumes(corpus, uninterrupted, tmp_path):
    """Lightning's SLURMEnvironment (auto-detected from the SLURM_* variables) catches the requeue
    signal mid-epoch, saves hpc_ckpt_1.ckpt and calls `scontrol requeue`; the job is killed; the
    requeued job (same command, same run dir) continues from that checkpoint to the same weights."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol_calls.txt"
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {**ENV, "SLURM_NTASKS": "1", "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "denoiselab",
             "SLURM_NODELIST": "localhost", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
             "PATH": f"{bin_dir}{os.pathsep}{ENV['PATH']}",
             "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), ENV.get("PYTHONPATH", "")])}
    run_dir = tmp_path / "preempted"
    # no step checkpoints: only the signal-time save can carry the progress inside the epoch
    common = [*_resume_common(corpus, tmp_path / "cache"), f"hydra.run.dir={run_dir}"]
    first = subprocess.run([sys.executable, "-m", "denoiselab.cli.train", *common,
                            "+callbacks.preempt._target_=probes.PreemptAt", "+callbacks.preempt.step=5"],
                           env=slurm, capture_output=True, text=True, timeout=600)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    assert calls.read_text().split() == ["requeue", "4242"]
    hpc = run_dir / "hpc_ckpt_1.ckpt"
    assert load_checkpoint(hpc)["global_step"] == 5
    requeued = subprocess.run([sys.executable, "-m", "denoiselab.cli.train", *common], env=slurm, capture_output=True,
                              text=True, timeout=600)
    assert requeued.returncode == 0, requeued.stderr[-2000:]
    assert "hpc_ckpt_1.ckpt (step 5)" in requeued.stdout + requeued.stderr
    _assert_same_weights(uninterrupted, run_dir / "checkpoints" / "last.ckpt")
