import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from denoiselab.cli.enhance import main


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    sf.write(d / "stereo48.wav", rng.standard_normal((48000 * 2, 2)).astype(np.float32) * 0.1, 48000)
    sf.write(d / "mono8.wav", rng.standard_normal(8000).astype(np.float32) * 0.1, 8000)
    sf.write(d / "pcm24.wav", rng.standard_normal(16000).astype(np.float32) * 0.1, 16000, subtype="PCM_24")
    sf.write(d / "sub" / "float.wav", rng.standard_normal(22050).astype(np.float32) * 0.1, 22050, subtype="FLOAT")
    sf.write(d / "sub" / "speech.ogg", rng.standard_normal(16000).astype(np.float32) * 0.1, 16000)
    sf.write(d / "sub" / "six.flac", rng.standard_normal((4000, 6)).astype(np.float32) * 0.1, 16000)
    return d


def test_outputs_keep_rate_channels_length_and_subtype(tiny_ckpt, inputs, tmp_path):
    before = _digest(inputs)
    code = main([str(inputs), "--ckpt", str(tiny_ckpt), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    for src in inputs.rglob("*.*"):
        dst = tmp_path / "out" / src.relative_to(inputs)
        a, b = sf.info(src), sf.info(dst)
        assert (a.samplerate, a.channels, a.frames, a.format) == (b.samplerate, b.channels, b.frames, b.format), src
        if a.format != "OGG":
            assert a.subtype == b.subtype
    assert _digest(inputs) == before  # inputs byte-identical


def test_existing_outputs_are_not_touched_without_overwrite(tiny_ckpt, inputs, tmp_path):
    out = tmp_path / "out"
    args = [str(inputs / "mono8.wav"), "--ckpt", str(tiny_ckpt), "--out", str(out), "--quiet"]
    assert main(args) == 0
    target = out / "mono8.wav"
    target.write_bytes(b"precious")
    assert main(args) == 0 and target.read_bytes() == b"precious"
    assert main(args + ["--overwrite"]) == 0 and sf.info(target).frames == 8000


def test_bad_inputs_are_reported_and_the_rest_is_processed(tiny_ckpt, inputs, tmp_path, caplog):
    (inputs / "corrupt.wav").write_bytes(b"RIFF????WAVEjunk")
    sf.write(inputs / "empty.wav", np.zeros(0, np.float32), 16000)
    (tmp_path / "nothing").mkdir()
    code = main([str(inputs), str(tmp_path / "nothing"), str(tmp_path / "missing.wav"), "--ckpt", str(tiny_ckpt),
                 "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 1
    text = caplog.text
    assert "corrupt.wav: unreadable audio" in text
    assert "empty.wav: empty recording" in text
    assert "no audio files found in this folder" in text
    assert "missing.wav: no such file or folder" in text
    assert (tmp_path / "out" / "mono8.wav").is_file()  # the good files still processed


def test_output_into_the_input_folder_is_refused(tiny_ckpt, inputs):
    before = _digest(inputs)
    assert main([str(inputs / "mono8.wav"), "--ckpt", str(tiny_ckpt), "--out", str(inputs), "--quiet",
                 "--overwrite"]) == 1
    assert _digest(inputs) == before


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input(tiny_ckpt, inputs, capsys, caplog):
    """`enhance in/ --out in/denoised` twice: the second run skips the six outputs it made instead of
    denoising them again into in/denoised/denoised/ and failing on the originals; --out the input folder
    itself, or a file, is refused before anything is written."""
    out = inputs / "denoised"
    args = [str(inputs), "--ckpt", str(tiny_ckpt), "--out", str(out)]
    assert main(args) == 0
    made = _digest(out)
    assert len([k for k in made if not k.endswith(".json")]) == 6
    with caplog.at_level("INFO"):
        assert main(args) == 0
    assert caplog.text.count("exists (use --overwrite to replace it)") == 6
    assert _digest(out) == made and not (out / "denoised").exists()
    before = _digest(inputs)
    assert main([str(inputs), "--ckpt", str(tiny_ckpt), "--out", str(inputs), "--overwrite"]) == 2
    assert "is the input folder" in capsys.readouterr().err
    assert main([str(inputs), "--ckpt", str(tiny_ckpt), "--out", str(inputs / "mono8.wav")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err
    assert _digest(inputs) == before


def test_killed_run_leaves_no_partial_file_under_the_final_name(tiny_ckpt, tmp_path):
    long = tmp_path / "long.wav"
    sf.write(long, np.random.default_rng(0).standard_normal(16000 * 120).astype(np.float32) * 0.1, 16000)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "denoiselab.cli.enhance", str(long), "--ckpt", str(tiny_ckpt),
                             "--out", str(out), "--chunk-seconds", "1", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = out / ".long.wav.denoiselab-partial"
    deadline = time.time() + 120
    while not partial.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert partial.exists(), "enhancement never started writing"
    assert proc.poll() is None, "the run ended before it could be killed: nothing was tested"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (out / "long.wav").exists()  # killed mid-write: nothing under the final name
    assert partial.exists()  # ...and the kill really hit a half-written file
    # a rerun completes the file and leaves no partial behind
    assert main([str(long), "--ckpt", str(tiny_ckpt), "--out", str(out), "--quiet"]) == 0
    assert sf.info(out / "long.wav").frames == 16000 * 120 and not partial.exists()
