"""The mistakes a new user makes end in one or two lines that name the problem and the fix, exit code 2
and no traceback, for every entry point (run as a user runs them: a subprocess, no HYDRA_FULL_ERROR)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.slow

USER_ENV = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}


@pytest.fixture(scope="module")
def place(tmp_path_factory, corpus):
    root = tmp_path_factory.mktemp("mistakes")
    (root / "empty").mkdir()
    (root / "junk.ckpt").write_bytes(b"this is not a checkpoint")
    (root / "not_a_sweep").mkdir()
    sf.write(root / "one.wav", np.zeros(1600, np.float32) + 0.01, 16000)
    (root / "devs" / "mic").mkdir(parents=True)
    sf.write(root / "devs" / "mic" / "take1.wav", np.zeros(16000, np.float32) + 0.01, 16000)
    return {"root": root, **{k: str(v) for k, v in corpus.items()}}


def _data(p):
    return [f"data.clean={p['clean']}", f"data.noise={p['noise']}", f"data.val_clean={p['val_clean']}",
            f"data.val_noise={p['val_noise']}", "experiment=tiny"]


MISTAKES = [
    # (id, tool, args(place) -> list, expected text in the error line)
    ("empty folder", "train", lambda p: [f"data.clean={p['root'] / 'empty'}", f"data.noise={p['noise']}",
                                         "experiment=tiny"], "No usable clean recordings"),
    ("misspelt folder", "train", lambda p: [f"data.clean={p['clean']}x", f"data.noise={p['noise']}"],
     "(did you mean"),
    ("dot instead of slash", "train", lambda p: ["model.net=resnet"], "write model/net=resnet"),
    ("misspelt trainer key", "train", lambda p: ["trainer.max_step=100"], "did you mean trainer.max_steps?"),
    ("misspelt data key", "train", lambda p: ["data.batchsize=4"], "did you mean data.batch_size?"),
    ("unknown optimiser key", "train", lambda p: ["model.optimizer.learning_rate=0.1"],
     "model.optimizer.learning_rate is not a setting"),
    ("misspelt key of an experiment's node", "train",
     lambda p: ["experiment=device_eval", "data.device_path.quite=0.1"], "did you mean data.device_path.quiet?"),
    ("key of a node the config lacks", "train", lambda p: ["data.device_path.p=0.1"],
     "this config has no data.device_path settings"),
    ("unknown backbone", "train", lambda p: ["model/net=transformer9000"],
     "model/net=transformer9000 is not an option"),
    ("value out of range", "train", lambda p: [*_data(p), "data.clip_seconds=-1"], "data.clip_seconds must be > 0"),
    ("reversed range", "train", lambda p: [*_data(p), "data.mix.mode=snr", "data.mix.snr_db=[20,-5]"],
     "data.mix.snr_db range is reversed"),
    ("not a number", "train", lambda p: ["trainer.max_steps=abc"], "could not be converted"),
    # both ran no step and exited 0 without a checkpoint
    ("no steps", "train", lambda p: [*_data(p), "trainer.max_steps=0"], "trainer.max_steps=0 trains nothing"),
    ("no epochs", "train", lambda p: [*_data(p), "trainer.max_epochs=0"], "trainer.max_epochs=0 trains nothing"),
    ("negative lr", "train", lambda p: [*_data(p), "model.optimizer.lr=-1e-3"],  # torch: "Invalid learning rate"
     "model.optimizer.lr must be >= 0, got -0.001"),
    ("zero time budget", "train", lambda p: [*_data(p), "time_budget=0"],  # was no budget: trained until killed
     "time_budget must be > 0"),
    ("negative seed", "train", lambda p: [*_data(p), "seed=-1"], "seed must be >= 0"),  # numpy: "not in bounds"
    ("negative validation size", "train", lambda p: [*_data(p), "data.max_val_items=-1"],
     "data.max_val_items must be >= 0"),  # "__len__() should return >= 0"
    ("clip shorter than a window", "train", lambda p: [*_data(p), "data.clip_seconds=0.01"],
     "is shorter than one STFT window"),  # torch's padding error, as a traceback
    ("validation every 0 steps", "train", lambda p: [*_data(p), "trainer.val_check_interval=0"],
     "trainer.val_check_interval must be > 0"),  # a ZeroDivisionError traceback
    ("missing checkpoint", "train", lambda p: [*_data(p), f"ckpt_path={p['root'] / 'nope.ckpt'}"],
     "ckpt_path does not exist"),
    ("unreadable checkpoint", "train", lambda p: [*_data(p), f"ckpt_path={p['root'] / 'junk.ckpt'}"], "damaged"),
    ("evaluate: single missing ckpt", "evaluate", lambda p: [f"ckpt={p['root'] / 'nope.ckpt'}",
                                                            f"data.clean={p['val_clean']}",
                                                            f"data.noise={p['val_noise']}"],
     "model file not found"),
    ("evaluate: no test set", "evaluate", lambda p: [], "give a test set"),
    ("evaluate: unknown metric", "evaluate", lambda p: ["metrics=[pesq_xx]", f"data.clean={p['val_clean']}",
                                                        f"data.noise={p['val_noise']}"], "unknown metric"),
    ("enhance: unreadable model", "enhance", lambda p: [str(p["root"] / "one.wav"), "--ckpt",
                                                         str(p["root"] / "junk.ckpt"), "--out",
                                                         str(p["root"] / "out")], "cannot be read"),
    ("enhance: threads below one", "enhance", lambda p: [str(p["root"] / "one.wav"), "--threads", "-2", "--out",
                                                         str(p["root"] / "out")], "--threads must be >= 1"),
    ("enhance: strength out of range", "enhance", lambda p: [str(p["root"] / "one.wav"), "--strength", "2",
                                                              "--out", str(p["root"] / "out")],
     "strength must be in [0, 1]"),
    ("device: missing folder", "device", lambda p: [f"devices={p['root'] / 'nope'}"],
     "devices folder does not exist"),
    ("device: two denoisers", "device", lambda p: [f"devices={p['root'] / 'devs'}", "baseline=wiener",
                                                   f"processed={p['root'] / 'empty'}"], "choose one denoiser"),
    ("device: processed folder lacks an output", "device",
     lambda p: [f"devices={p['root'] / 'devs'}", f"processed={p['root'] / 'empty'}"],
     "has no output for recording mic/take1.wav"),
    ("export: missing checkpoint", "export", lambda p: ["--ckpt", str(p["root"] / "nope.ckpt"), "--out",
                                                        str(p["root"] / "x.pt")], "model file not found"),
    ("prepare: missing folder", "prepare", lambda p: ["--clean", str(p["root"] / "nope"), "--noise", p["noise"],
                                                      "--out", str(p["root"] / "prep")], "no such file or folder"),
    ("compare: not a sweep", "compare", lambda p: [str(p["root"] / "not_a_sweep")], "holds no Hydra jobs"),
]


@pytest.mark.parametrize("tool,make_args,expected", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_a_user_mistake_is_one_clear_line_and_exit_code_2(place, tmp_path, tool, make_args, expected):
    args = make_args(place)
    if tool in ("train", "evaluate", "device"):
        args.append(f"hydra.run.dir={tmp_path / 'run'}")
    proc = subprocess.run([sys.executable, "-m", f"denoiselab.cli.{tool}", *args], capture_output=True, text=True,
                          timeout=300, env=USER_ENV)
    err_lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:] + proc.stdout[-1000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(err_lines) <= 2, err_lines
    assert err_lines[0].startswith(f"denoiselab-{tool}: error: ") and expected in err_lines[0], err_lines


def test_debug_shows_the_traceback(place, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "denoiselab.cli.export", "--ckpt", str(place["root"] / "nope.ckpt"),
                           "--out", str(tmp_path / "x.pt"), "--debug"], capture_output=True, text=True, timeout=300,
                          env=USER_ENV)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
