import subprocess
import sys
from pathlib import Path

import pytest

from denoiselab.training.instantiate import close_loggers
from denoiselab.training.train import run

from hydra_helpers import TINY_NET, compose_train, corpus_overrides


def test_quality_callback_logs_metrics_and_media_to_wandb_and_tensorboard(corpus, cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "run"
    cfg = compose_train(["experiment=tiny", *TINY_NET["unet"], *corpus_overrides(corpus, cache_dir), "logger=many",
                         "trainer.max_steps=3", "callbacks.quality.every_n_epochs=1", "callbacks.quality.max_items=2",
                         "monitor=val/pesq_wb", "data.clip_seconds=2.0"], out)
    try:
        metrics = run(cfg)
    finally:
        close_loggers()
    assert 1.0 <= metrics["val/pesq_wb"] <= 4.7 and 0.0 <= metrics["val/stoi"] <= 1.0
    assert list((out / "checkpoints").glob("best*.ckpt"))  # monitored PESQ picked a best checkpoint
    # TensorBoard: scalars, audio and images are in the event file
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(next((out / "tensorboard").glob("version_*"))), size_guidance={"audio": 0, "images": 0})
    ev.Reload()
    tags = ev.Tags()
    assert "val/pesq_wb" in tags["scalars"]
    assert any(t.startswith("val_audio/example_0") for t in tags["audio"])
    assert any(t.startswith("val_spectrogram/example_0") for t in tags["images"])
    # W&B offline run: summary holds the metric, media files were written
    run_dir = next((out / "wandb").glob("offline-run-*"))
    media = list((run_dir / "files" / "media").rglob("*"))
    assert any(p.suffix == ".wav" for p in media) and any(p.suffix == ".png" for p in media)
    history = (run_dir / f"run-{run_dir.name.split('-')[-1]}.wandb").read_bytes()
    assert b"val/pesq_wb" in history


@pytest.mark.slow
def test_compare_ranks_a_wandb_multirun_by_each_jobs_recorded_best(corpus, cache_dir, tmp_path, capsys):
    """The README's own example: a logger=wandb sweep (no CSV logs), then denoiselab-compare. The ranking
    must follow each job's monitored best as its checkpoint callback recorded it (an independent source),
    show steps and parameters, and list a job without metrics last, saying so."""
    import csv
    import os

    from denoiselab.cli.compare import main
    from denoiselab.core.checkpoints import load_checkpoint, monitored_states

    sweep = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    cmd = [sys.executable, "-m", "denoiselab.cli.train", "-m", "model/net=unet,resnet,lstm", "experiment=tiny",
           "logger=wandb", "trainer.max_steps=3", *corpus_overrides(corpus, cache_dir), f"hydra.sweep.dir={sweep}",
           "callbacks.quality=null"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(sweep.glob("*/csv"))  # no CSV logs to fall back on
    (sweep / "3_broken" / ".hydra").mkdir(parents=True)  # a job that died before validating
    assert main([str(sweep)]) == 0
    rows = list(csv.DictReader(open(sweep / "compare.csv")))
    recorded = {}
    for job in ("0_unet", "1_resnet", "2_lstm"):
        state = monitored_states(load_checkpoint(sweep / job / "checkpoints" / "last.ckpt"))[0]
        recorded[job] = float(state["best_model_score"])
    expected = sorted(recorded, key=lambda j: -recorded[j])
    assert [r["job"] for r in rows] == [*expected, "3_broken"]
    for r in rows[:3]:
        assert float(r["val/si_sdr"]) == pytest.approx(recorded[r["job"]], abs=1e-4)
        assert r["steps"] == "3" and int(float(r["params"])) > 0 and float(r["minutes"]) > 0
        assert r["best_checkpoint"].endswith(".ckpt") and Path(r["best_checkpoint"]).is_file()
    assert rows[3]["rank"] == "–" and "no metrics" in rows[3]["note"]
    md = (sweep / "compare.md").read_text()
    assert "| rank |" in md and "steps" in md and "3_broken: no metrics" in md
    capsys.readouterr()
    assert main([str(sweep), "--metrics", "val/pesq"]) == 1  # a misspelt metric: what was logged is listed
    said = capsys.readouterr()
    assert "0_unet: none of val/pesq logged; it logged val/loss, " in said.out and "val/si_sdr" in said.out
    assert "has any of val/pesq; the jobs logged val/loss, " in said.err


def test_compare_names_the_final_checkpoint_of_a_job_that_stopped_before_validating_in_training(tmp_path):
    """max_steps inside the first epoch: training scores its final weights after fit, so no monitored best
    exists and the score shown is last.ckpt's (compare said 'best checkpoint none')."""
    import json

    import torch

    from denoiselab.evaluation.compare import job_summary

    job = tmp_path / "0_unet"
    (job / ".hydra").mkdir(parents=True)
    (job / "checkpoints").mkdir()
    torch.save({"global_step": 3, "state_dict": {}}, job / "checkpoints" / "last.ckpt")
    lines = [{"event": "start", "step": 0, "params": 10}, {"event": "end", "step": 3, "seconds": 1.0},
             {"event": "validation", "step": 3, "seconds": 2.0, "val/si_sdr": 3.8}]
    (job / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    row = job_summary(job, ["val/si_sdr"])
    assert row["val/si_sdr"] == 3.8 and row["best_checkpoint"] == str(job / "checkpoints" / "last.ckpt")
    (job / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines[:2]))  # never validated
    assert job_summary(job, ["val/si_sdr"])["best_checkpoint"] == ""
