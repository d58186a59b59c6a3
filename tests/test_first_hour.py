"""What a new user meets in the first hour: progress wherever output goes, reports that read right,
runs that say what they did, a quiet console."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from denoiselab.core.denoiser import Denoiser
from denoiselab.core.model_files import save_inference
from denoiselab.evaluation import report

from conftest import speechlike, write_pairs
from hydra_helpers import TINY_NET, corpus_overrides

ENV = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, "WANDB_MODE": "offline",
       "DENOISELAB_PROGRESS_SECONDS": "0"}


@pytest.mark.slow
def test_train_and_evaluate_with_output_to_a_file_print_progress_lines_and_no_library_noise(corpus, cache_dir,
                                                                                           tmp_path):
    run_dir = tmp_path / "run"
    train = subprocess.run([sys.executable, "-m", "denoiselab.cli.train", "experiment=tiny", *TINY_NET["unet"],
                            *corpus_overrides(corpus, cache_dir), "trainer.max_steps=4", f"hydra.run.dir={run_dir}"],
                           capture_output=True, text=True, timeout=600, env=ENV)  # captured = not a terminal
    out = train.stdout + train.stderr
    assert train.returncode == 0, out[-3000:]
    assert "train: step 4/4" in out and "steps/s" in out and "validation at step" in out
    assert "train: step 4/4" in (run_dir / "train.log").read_text()  # the run's log file gets it too
    for noise in ("Tip:", "GPU available", "Epoch 0/-2", "LeafSpec", "Seed set to"):
        assert noise not in out, noise
    best = [ln for ln in train.stdout.splitlines() if ln.startswith("best checkpoint: ")]
    assert best and best[0].split(": ", 1)[1].strip().endswith(".ckpt")  # a path on its own line, whole
    ev_dir = tmp_path / "eval"
    ev = subprocess.run([sys.executable, "-m", "denoiselab.cli.evaluate", f"ckpt={run_dir}",
                         f"data.clean={corpus['val_clean']}", f"data.noise={corpus['val_noise']}",
                         "data.snrs=[15,-5,10,0,5]", "metrics=[si_sdr]", "plots=false", f"hydra.run.dir={ev_dir}"],
                        capture_output=True, text=True, timeout=600, env=ENV)
    assert ev.returncode == 0, (ev.stdout + ev.stderr)[-3000:]
    log = (ev_dir / "evaluate.log").read_text()
    assert "scoring: 0/" in log and "(done)" in log and "denoising with noisy" in log
    md = (ev_dir / "summary.md").read_text().split("## By input SNR")[1].split("## By noise type")[0]
    order = [ln.split("|")[1].strip() for ln in md.splitlines() if ln.startswith("| ") and ".." in ln]
    buckets = list(dict.fromkeys(order))
    assert buckets == ["-5..0", "0..5", "5..10", "10..15", "15..20"], buckets  # numeric, not text order
    types = (ev_dir / "summary.md").read_text().split("## By noise type")[1]
    # noise types from the file names (vwhite00.wav -> vwhite), not the folder (val_noise)
    assert "| vwhite |" in types and "| vpink |" in types and "val_noise" not in types


def test_numeric_bucket_order_and_group_sorting():
    rows = [{"b": b, "v": 1.0} for b in ("15..20", "-5..0", "10..15", "0..5", "5..10", "n/a")]
    assert [r["b"] for r in report.group_means(rows, ["b"], ["v"], sort=True)] == [
        "-5..0", "0..5", "5..10", "10..15", "15..20", "n/a"]


def test_noise_type_comes_from_the_sub_folder_or_the_file_name(tmp_path):
    from denoiselab.core.sources import category

    assert category(tmp_path / "noise" / "esc10_helicopter_03.flac", [tmp_path / "noise"]) == "esc10_helicopter"
    assert category(tmp_path / "noise" / "hum" / "x_01.wav", [tmp_path / "noise"]) == "hum"
    assert category(tmp_path / "sc_pink_noise.flac") == "sc_pink_noise"
    assert category(tmp_path / "mssnsd_noise_0010.flac") == "mssnsd_noise"


def test_rate_mismatch_between_noisy_and_clean_is_warned_and_recorded(tmp_path, caplog):
    from denoiselab.evaluation.evaluate import paired_items

    write_pairs(tmp_path, ["cafe_00.wav", "cafe_01.wav"], 1.0, np.random.default_rng(0), clean_every=2)
    items = paired_items(tmp_path / "noisy", tmp_path / "clean")
    assert [(it.rate, it.clean_rate, it.noise_type) for it in items] == [(16000, 8000, "cafe")] * 2
    assert "2 clean reference(s) are at another rate" in caplog.text and "clean 8000 Hz" in caplog.text


def test_time_budget_counts_this_invocation_only(corpus, cache_dir, tmp_path):
    from denoiselab.core.checkpoints import load_checkpoint
    from denoiselab.training.instantiate import close_loggers
    from denoiselab.training.train import run

    from hydra_helpers import compose_train

    out = tmp_path / "run"
    cfg = compose_train(["experiment=tiny", *TINY_NET["unet"], *corpus_overrides(corpus, cache_dir),
                         "trainer.max_steps=100000", "time_budget=2", "callbacks.quality=null"], out)
    try:
        run(cfg)
    finally:
        close_loggers()
    first = load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"]
    assert 0 < first < 100000
    cfg = compose_train(["experiment=tiny", *TINY_NET["unet"], *corpus_overrides(corpus, cache_dir),
                         "trainer.max_steps=100000", "time_budget=00:00:00:02", "callbacks.quality=null",
                         "auto_resume=true"], out)
    try:
        run(cfg)
    finally:
        close_loggers()
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] > first  # a fresh 2 s, not 0


def test_enhance_records_its_model_and_refuses_to_mix_models_in_one_folder(tiny_ckpt, tmp_path, capsys):
    from denoiselab.cli.enhance import MANIFEST, main

    src = tmp_path / "in.wav"
    sf.write(src, np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1, 16000)
    out = tmp_path / "out"
    assert main([str(src), "--ckpt", str(tiny_ckpt), "--out", str(out), "--quiet"]) == 0
    made = json.loads((out / MANIFEST).read_text())["files"]["in.wav"]
    assert made["model"] == str(tiny_ckpt) and len(made["model_sha1"]) == 12 and made["settings"]["strength"] == 1.0
    assert main([str(src), "--ckpt", str(tiny_ckpt), "--out", str(out), "--quiet"]) == 0  # same model again: fine
    torch.manual_seed(1)
    other = save_inference(Denoiser(net={"name": "lstm", "kwargs": {"hidden_size": 8}},
                                    frontend={"n_fft": 256, "hop_length": 64}), tmp_path / "other.pt")
    src2 = tmp_path / "second.wav"
    sf.write(src2, np.random.default_rng(1).standard_normal(8000).astype(np.float32) * 0.1, 16000)
    assert main([str(src2), "--ckpt", str(other), "--out", str(out), "--quiet"]) == 2
    assert "holds outputs made with another model" in capsys.readouterr().err and not (out / "second.wav").exists()
    assert main([str(src2), "--ckpt", str(other), "--out", str(out), "--quiet", "--allow-mixed"]) == 0
    files = json.loads((out / MANIFEST).read_text())["files"]
    assert files["second.wav"]["net"] == "lstm" and files["in.wav"]["model"] == str(tiny_ckpt)


def test_prepare_warns_when_the_validation_share_of_the_audio_is_far_from_the_asked_share(tmp_path, caplog):
    from denoiselab.training.prepare import prepare

    rng = np.random.default_rng(0)
    for kind, lengths in (("clean", (10.0, 10.0, 30.0)), ("noise", (12.0, 12.0, 12.0))):
        (tmp_path / kind).mkdir()
        for i, seconds in enumerate(lengths):
            sf.write(tmp_path / kind / f"{kind}{i}.wav", speechlike(seconds, 16000, rng), 16000)
    stats = prepare(tmp_path / "clean", tmp_path / "noise", tmp_path / "out", clip_seconds=2.0, val_fraction=0.34)
    assert "clean validation share" in stats and "not the 34 % asked for" in caplog.text
    assert "noise validation share" not in stats  # equal-length noise files split as asked


@pytest.mark.parametrize("tool,said,not_said", [
    ("evaluate", "denoiselab-evaluate: score checkpoints", "model/net:"),  # the training groups are not its own
    ("train", "denoiselab-train: train a denoiser", "is powered by Hydra"),
    ("device", "denoiselab-device: score audio devices", "model/net:"),
])
def test_hydra_tools_help_names_the_tool_and_shows_its_own_settings(tool, said, not_said):
    proc = subprocess.run([sys.executable, "-m", f"denoiselab.cli.{tool}", "--help"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and said in proc.stdout and not_said not in proc.stdout, proc.stdout[:2000]
    assert "task_name: " + tool in proc.stdout


def test_prepare_help_shows_defaults(capsys):
    from denoiselab.cli.prepare import main

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "(default: 5.0)" in capsys.readouterr().out


@pytest.mark.parametrize("tool,args,shown", [
    ("train", ["experiment=finetune", "loss=compressed_complex", "--cfg", "job"], "CompressedComplexLoss"),
    ("evaluate", ["--cfg", "job", "atten_limit_db=12"], "atten_limit_db: 12"),
    ("device", ["devices=somewhere", "--cfg", "job"], "devices: somewhere"),
])
def test_cfg_job_prints_the_composed_config_with_the_options_before_or_after_the_overrides(tool, args, shown):
    """Hydra's --cfg is how a user reads what a command line composes to; the tool must not add an
    argument of its own that the option parser then refuses."""
    run = subprocess.run([sys.executable, "-m", f"denoiselab.cli.{tool}", *args], capture_output=True, text=True,
                         timeout=300, env=ENV)
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    assert shown in run.stdout


def test_device_report_keeps_non_intrusive_scores_of_recordings_refused_for_alignment():
    from denoiselab.evaluation.device_stats import per_device

    rows = [{"device": "a", "status": "ok", "pesq_wb_before": 2.0, "dnsmos_ovrl_before": 3.0, "snr_est": 20.0},
            {"device": "b", "status": "refused", "dnsmos_ovrl_before": 2.5, "snr_est": 10.0, "note": "wrong ref"}]
    devs = {d["device"]: d for d in per_device(rows)}
    assert devs["b"]["dnsmos_ovrl_before"] == 2.5 and devs["b"]["snr_est_before"] == 10.0
    assert math.isnan(devs["b"]["pesq_wb_before"]) and devs["b"]["refused"] == 1
    assert devs["a"]["rank_dnsmos_ovrl_before"] == 1 and devs["b"]["rank_dnsmos_ovrl_before"] == 2
