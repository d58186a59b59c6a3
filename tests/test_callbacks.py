import json
import subprocess
import sys

import pytest

from denoiselab.train import run
from denoiselab.utils.instantiate import close_loggers

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


def test_compare_ranks_the_jobs_of_a_multirun(corpus, cache_dir, tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "denoiselab.train", "-m", "model/net=unet,resnet", "experiment=tiny",
           "trainer.max_steps=3", *TINY_NET["unet"][:0], *corpus_overrides(corpus, cache_dir),
           f"hydra.sweep.dir={sweep}", "callbacks.quality=null"]
    assert subprocess.run(cmd, capture_output=True, timeout=600).returncode == 0
    from denoiselab.compare import main

    assert main([str(sweep)]) == 0
    import csv

    rows = list(csv.DictReader(open(sweep / "compare.csv")))
    assert [r["rank"] for r in rows] == ["1", "2"] and {r["job"] for r in rows} == {"0_unet", "1_resnet"}
    assert float(rows[0]["val/si_sdr"]) >= float(rows[1]["val/si_sdr"])
    assert (sweep / "compare.png").stat().st_size > 5000 and "| rank |" in (sweep / "compare.md").read_text()
