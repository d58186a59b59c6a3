import csv
import re

import matplotlib.image as mpimg
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfiltfilt

from denoiselab.core.audio import resample
from denoiselab.core.checkpoints import load_checkpoint
from denoiselab.core.mixing import snr_gain
from denoiselab.evaluation import metrics as M
from denoiselab.evaluation.alignment import AlignmentError, align
from denoiselab.evaluation.device import evaluate_devices, is_narrowband, keep_device_band

from conftest import speechlike

SR = 16000


def wiener_leading(x: np.ndarray, sr: int) -> np.ndarray:
    """Wiener filter with the noise estimated from the leading 0.25 s (speech-free here)."""
    from denoiselab.evaluation.baselines import wiener

    return wiener(x, sr, noise="leading")
# device -> (low cut Hz, high cut Hz, clip level (fraction of peak) or None, native rate); known order of quality
DEVICES = {"studio": (None, None, None, 16000), "wide7k": (80, 7000, None, 16000),
           "phone": (300, 3400, None, 8000), "cheap_phone": (300, 3400, 0.15, 8000)}


def _device(x: np.ndarray, lo, hi, clip) -> np.ndarray:
    """Zero-phase band-limiting (so the known delay is the true delay) and optional hard clipping."""
    y = x.copy()
    if lo:
        y = sosfiltfilt(butter(4, [lo, hi], "bandpass", fs=SR, output="sos"), y)
    if clip:
        level = clip * np.abs(y).max()
        y = np.clip(y, -level, level)
    return y.astype(np.float32)


def _speech(n: int) -> list[np.ndarray]:
    """Real-sounding speech: eSpeak NG sentences (deterministic; the demo extra that make test installs
    ships eSpeak). No silent fallback: if synthesis breaks, this test says so instead of scoring tones."""
    from denoiselab.training.data.demo_corpus import sentences, synthesize

    waves, rate = synthesize([(t, "en-us", 160, 50, i) for i, t in enumerate(sentences(7)[:n])])
    return [0.3 * w / np.abs(w).max() for w in (resample(w, rate, SR) for w in waves)]


@pytest.fixture(scope="module")
def devices_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("devices")
    rng = np.random.default_rng(0)
    refs = []
    (root / "reference").mkdir()
    for i, speech in enumerate(_speech(4)[:3]):
        ref = np.concatenate([np.zeros(4800, np.float32), speech, np.zeros(1600, np.float32)]).astype(np.float32)
        sf.write(root / "reference" / f"utt{i}.wav", ref, SR)
        refs.append(ref)
    truth = {}
    rooms = {"": 50.0, "_noisyroom": 5.0}
    for name, (lo, hi, clip, rate) in DEVICES.items():
        for room, snr in rooms.items():
            if room and name not in ("studio", "phone"):
                continue
            dev = root / f"{name}{room}"
            dev.mkdir()
            for i, ref in enumerate(refs):
                delay = int(rng.integers(50, 900))  # at 16 kHz
                gain = float(rng.uniform(0.3, 1.2))
                y = _device(ref, lo, hi, clip) * gain
                noise = rng.standard_normal(y.size).astype(np.float32)
                noise = noise * snr_gain(y, noise, snr)
                rec = np.concatenate([np.zeros(delay, np.float32), y + noise, np.zeros(800, np.float32)])
                rec = resample(rec, SR, rate)
                sf.write(dev / f"utt{i}.wav", rec, rate)
                truth[(dev.name, f"utt{i}.wav")] = delay * rate / SR
    # a wrong reference: unrelated speech under the right name
    other = _speech(4)[3]
    sf.write(root / "studio" / "utt9.wav", other, SR)
    sf.write(root / "reference" / "utt9.wav", refs[0], SR)
    # a device without references
    (root / "field").mkdir()
    sf.write(root / "field" / "street.wav", refs[0] + 0.02 * rng.standard_normal(refs[0].size).astype(np.float32), SR)
    return root, truth


@pytest.fixture(scope="module")
def report_dir(devices_dir, tmp_path_factory):
    root, _ = devices_dir
    out = tmp_path_factory.mktemp("device_report")
    evaluate_devices(root, out, denoise=wiener_leading, dnsmos=False)
    return out


def _rows(path):
    return list(csv.DictReader(open(path)))


def test_alignment_recovers_every_delay_within_one_sample(devices_dir, report_dir):
    _, truth = devices_dir
    rows = {(r["device"], r["file"].split("/")[-1]): r for r in _rows(report_dir / "per_recording.csv")}
    for key, delay in truth.items():
        assert abs(float(rows[key]["delay_samples"]) - delay) <= 1.0, (key, rows[key]["delay_samples"], delay)


def test_devices_are_ranked_in_their_known_order(report_dir):
    devs = {r["device"]: r for r in _rows(report_dir / "per_device.csv")}
    order = ["studio", "wide7k", "phone", "cheap_phone"]
    pesq = [float(devs[d]["pesq_wb_before"]) for d in order]
    assert pesq == sorted(pesq, reverse=True), pesq


def test_denoising_brings_noisy_and_quiet_room_scores_closer(report_dir):
    devs = {r["device"]: r for r in _rows(report_dir / "per_device.csv")}
    for d in ("studio", "phone"):
        for s in ("pesq_wb", "si_sdr", "estoi"):
            gap_before = float(devs[d][f"{s}_before"]) - float(devs[f"{d}_noisyroom"][f"{s}_before"])
            gap_after = float(devs[d][f"{s}_after"]) - float(devs[f"{d}_noisyroom"][f"{s}_after"])
            assert gap_after < gap_before, (d, s, gap_before, gap_after)


def test_wrong_reference_is_refused_and_the_rest_scored(report_dir):
    rows = _rows(report_dir / "per_recording.csv")
    bad = [r for r in rows if r["file"].endswith("studio/utt9.wav")][0]
    assert bad["status"] == "refused" and "reference does not match" in bad["note"]
    assert sum(r["status"] == "ok" for r in rows) == len(rows) - 1


def test_recordings_without_reference_get_non_intrusive_scores_only(report_dir):
    field = [r for r in _rows(report_dir / "per_recording.csv") if r["device"] == "field"][0]
    assert field["status"] == "ok" and "non-intrusive" in field["note"]
    assert field.get("pesq_wb_before", "") in ("", "nan") and 5 < float(field["snr_est"]) < 25
    md = (report_dir / "report.md").read_text()
    assert "## Recordings without a reference" in md and "field: street.wav" in md


def test_report_opens_with_the_answer_labels_honestly_and_renders_clean_html(report_dir):
    md = (report_dir / "report.md").read_text()
    sections = ["## Answer", "## Scores of the raw recordings (the result)", "## After removing the room noise",
                "## Lab measurements", "## Ranking stability", "## Metrics and their standards", "## Settings",
                "## Refused"]
    positions = [md.index(s) for s in sections]
    assert positions == sorted(positions)  # the answer first, details after
    assert "wiener_leading" in md and "| device |" in md and "Ranking by pesq_wb of the raw recordings" in md
    assert "P.862.2" in md and "withdrew" in md and "P.863" in md and "speechmos" in md
    assert "n/a (band-limited)" in md  # SI-SDR is not shown for the telephone-band devices
    assert "No calibration" in md
    assert "changes kept only in the band a telephone-band device passes" in md  # how denoising was applied
    html = (report_dir / "report.html").read_text()
    assert "<table>" in html and html.count("data:image/png;base64,") >= 4
    text = html.split("<body>")[1]
    assert "`" not in text and "**" not in text and "| ---" not in text  # no markdown syntax leaks
    assert "<code>" in text and "overflow-x:auto" in html
    pngs = list(report_dir.glob("*.png"))
    assert len(pngs) >= 4
    for p in pngs:
        img = mpimg.imread(p)
        assert img.shape[0] > 200 and img.std() > 0.01


def test_align_refuses_unrelated_signals():
    rng = np.random.default_rng(5)
    a, b = speechlike(2.0, SR, rng), speechlike(2.0, SR, rng)
    with pytest.raises(AlignmentError, match="does not match"):
        align(a, b)
    rec = np.concatenate([np.zeros(333, np.float32), 0.5 * a])
    al, aligned = align(rec, a)
    assert abs(al.delay - 333) < 0.5 and al.correlation > 0.99 and abs(al.gain - 0.5) < 0.01


def _band_energy(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return float((np.abs(np.fft.rfft(x)) ** 2)[(f >= lo) & (f < hi)].sum())


def test_denoiser_changes_are_kept_only_in_the_band_a_telephone_device_passes():
    """A telephone device: outside 300-3400 Hz its recording holds only its own hiss (the room went through
    its band like the speech), so a denoiser's cleaning there is undone; inside the band it stands."""
    rng = np.random.default_rng(7)
    sr = 8000
    speech = resample(speechlike(3.1, SR, rng), SR, sr)
    phone = sosfiltfilt(butter(6, [300, 3400], "bandpass", fs=sr, output="sos"), speech)
    rec = (phone + 3e-4 * rng.standard_normal(phone.size)).astype(np.float32)  # device hiss, broadband
    f = np.fft.rfftfreq(rec.size, 1 / sr)
    # a denoiser that halves the in-band signal and removes everything above 3.5 kHz
    denoised = np.fft.irfft(np.fft.rfft(rec) * np.where(f > 3500, 0.0, 0.5), rec.size).astype(np.float32)
    kept = keep_device_band(rec, denoised, sr)
    assert kept.shape == rec.shape and kept.dtype == np.float32
    assert keep_device_band(rec, denoised[:-100], sr).shape == rec.shape  # a denoiser that drops samples
    above = _band_energy(rec, sr, 3700, 4000)
    assert above > 0 and abs(_band_energy(kept, sr, 3700, 4000) / above - 1) < 0.01  # the device's own hiss
    assert abs(_band_energy(kept, sr, 500, 3000) / _band_energy(rec, sr, 500, 3000) - 0.25) < 0.01  # cleaned
    # wideband devices, with and without an edge of their own at 6 kHz: the denoiser's output stands as
    # it is (room noise reaches them above any roll-off of the speech)
    wide = (speechlike(2.3, SR, rng) + 0.05 * rng.standard_normal(int(2.3 * SR))).astype(np.float32)
    wide6k = sosfiltfilt(butter(6, 6000, fs=SR, output="sos"), wide).astype(np.float32)
    for rec16 in (wide, wide6k):
        np.testing.assert_allclose(keep_device_band(rec16, 0.5 * rec16, SR), 0.5 * rec16, atol=1e-6)


def test_narrow_band_means_a_device_edge_not_a_dark_voice():
    """A telephone band sampled at 16 kHz is narrow band; a wideband recording of a dark voice with 31 dB
    less energy above 4 kHz than below is not (it was labelled narrow at the old -30 dB threshold)."""
    rng = np.random.default_rng(7)
    voice = speechlike(2.0, SR, rng) + 0.003 * rng.standard_normal(2 * SR)
    f = np.fft.rfftfreq(voice.size, 1 / SR)
    power = np.abs(np.fft.rfft(voice)) ** 2
    assert -35 < 10 * np.log10(power[f > 4000].sum() / power.sum()) < -30
    assert not is_narrowband(voice, SR)
    assert is_narrowband(sosfiltfilt(butter(8, [300, 3400], "bandpass", fs=SR, output="sos"), voice), SR)
    assert is_narrowband(resample(voice, SR, 8000), 8000)


@pytest.mark.skipif(not M.dnsmos_available(), reason="dnsmos extra not installed")
def test_dnsmos_scores_recordings_without_reference(tmp_path):
    (tmp_path / "devs" / "mic").mkdir(parents=True)
    speech = _speech(1)[0]
    noisy = speech + 0.05 * np.random.default_rng(0).standard_normal(speech.size).astype(np.float32)
    sf.write(tmp_path / "devs" / "mic" / "a.wav", noisy, SR)
    rows, devs = evaluate_devices(tmp_path / "devs", tmp_path / "out", baseline="wiener", dnsmos=True)
    assert 1.0 <= rows[0]["dnsmos_ovrl_before"] <= 5.0
    assert rows[0]["dnsmos_bak_after"] > rows[0]["dnsmos_bak_before"]  # Wiener removes background noise
    assert "pesq_wb_before" not in rows[0]


@pytest.mark.slow
def test_device_workflow_fine_tunes_on_the_room_noise_and_says_so(devices_dir, tiny_ckpt, tmp_path):
    """denoiselab-device devices=DIR finetune.noise=ROOM: a fine-tuning run on the room noise with the
    campaign's references as speech, then scoring with its final checkpoint, named in the report. Paths
    are given relative to the working directory, as a user types them (the reference list written for
    the training run once held cwd-relative paths that the list reader resolved against its own folder)."""
    import os
    import shutil
    import subprocess
    import sys

    from conftest import noise_signal

    # the campaign's references and one device: the fine-tuning path is what is tested, not the scoring
    root = tmp_path / "campaign"
    for part in ("reference", "wide7k"):
        shutil.copytree(devices_dir[0] / part, root / part)
    room = tmp_path / "room_noise"
    room.mkdir()
    sf.write(room / "hvac_take1.wav", noise_signal("hum", 12.0, SR, np.random.default_rng(5)), SR)
    out = tmp_path / "report"
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = subprocess.run([sys.executable, "-m", "denoiselab.cli.device", f"devices={os.path.relpath(root, tmp_path)}",
                           f"ckpt={tiny_ckpt}", "finetune.noise=room_noise", "finetune.time_budget=6", "dnsmos=false",
                           "hydra.run.dir=report", "paths.cache_dir=cache"],
                          capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    speech = (out / "finetune_speech.txt").read_text().split()
    assert speech and all("reference" in s for s in speech)
    assert (out / "finetune" / "checkpoints" / "last.ckpt").is_file()
    md = (out / "report.md").read_text()
    assert "fine-tuned from" in md and "room_noise" in md and "campaign references" in md
    assert str(out / "finetune" / "checkpoints" / "last.ckpt") in md  # the decayed run's final state
    # and whether it learnt the room: its validation mixtures scored before and after fine-tuning
    assert re.search(r"SI-SDR on its validation mixtures -?\d+\.\d\d dB before fine-tuning, -?\d+\.\d\d dB after", md)
    from omegaconf import OmegaConf

    run_cfg = OmegaConf.load(out / "finetune" / ".hydra" / "config.yaml")
    assert run_cfg.data.device_path.p == 0.8  # device defects stay in the target, as in device_eval
    # the device workflow's own measured recipe, not experiment=finetune's quarter without augmentations
    assert run_cfg.finetune.generic_share == 0.5 and run_cfg.data.augment is not None
    assert run_cfg.finetune.builtin_pool == "classic"  # and the general pool it was measured with
    assert run_cfg.finetune.distill == 0  # without the teacher experiment=finetune keeps on the builtin pool
    assert run_cfg.finetune.keep_start == 0  # nor its blend with the starting weights there
    assert "denoiselab_trained_state" not in load_checkpoint(out / "finetune" / "checkpoints" / "last.ckpt")
    assert set(run_cfg.loss.terms) == {"compressed", "sisdr"}  # and the loss, not experiment=finetune's newer one
    assert run_cfg.trainer.precision == "32-true"  # and float32, not experiment=finetune's auto
    assert _rows(out / "per_device.csv")


def test_lab_measurements_per_device(report_dir):
    devs = {r["device"]: r for r in _rows(report_dir / "per_device.csv")}
    assert devs["phone"]["bandwidth"] == "narrow" and devs["studio"]["bandwidth"] == "wide"
    assert float(devs["cheap_phone"]["clipping_rate"]) > 10 * float(devs["phone"]["clipping_rate"])
    # the studio device passes 100 Hz..6 kHz at 0 dB re 1 kHz; the phone has nothing reliable below 300 Hz
    assert abs(float(devs["studio"]["fr_2000"])) < 3 and devs["phone"]["fr_100"] == "nan"
    assert -45 < float(devs["studio"]["asl_dbov"]) < -10
    noisy_room = devs["studio_noisyroom"]  # Wiener takes the room's noise out of the pauses
    assert float(noisy_room["noise_floor_after_dbfs"]) < float(noisy_room["noise_floor_dbfs"]) - 3
    recs = _rows(report_dir / "per_recording.csv")
    assert all(float(r["delay_confidence"]) >= 30 for r in recs if r["status"] == "ok" and r["reference"])
    # every 8 kHz telephone recording is narrow band and scored on PESQ-NB, the clipped one included
    # (clipping harmonics leak above 4 kHz once resampled to the scoring rate)
    phones = [r for r in recs if r["device"] in ("phone", "cheap_phone") and r["status"] == "ok"]
    assert phones and all(r["band"] == "narrow" and r["pesq_nb_before"] not in ("", "nan") for r in phones)


def test_defect_change_shows_self_noise_removed_and_colouring_repaired():
    """Defect preservation, per recording: a denoiser that leaves the device alone moves nothing; one that
    removes the device's hiss lowers the pause floor without touching the response; one that undoes the
    device's colouring moves the response."""
    from denoiselab.evaluation.lab_measures import defect_change, noise_floor

    speech = _speech(1)[0]
    ref = np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(8000, np.float32)])
    hiss = 3e-3 * np.random.default_rng(0).standard_normal(ref.size).astype(np.float32)
    coloured = sosfiltfilt(butter(2, 1200, "lowpass", fs=SR, output="sos"), ref).astype(np.float32)
    rec = coloured + hiss
    kept = defect_change(rec, rec, ref, SR, rec)
    assert kept["noise_floor_after_dbfs"] == pytest.approx(noise_floor(rec, ref, SR), abs=0.01)
    assert kept["fr_change_db"] == pytest.approx(0.0, abs=0.01)
    dehissed = defect_change(rec, coloured, ref, SR, coloured)
    assert dehissed["noise_floor_after_dbfs"] < noise_floor(rec, ref, SR) - 10
    assert dehissed["fr_change_db"] < 1.0
    repaired = defect_change(rec, ref + hiss, ref, SR, ref + hiss)
    assert repaired["fr_change_db"] > 3.0


def test_calibration_against_a_quiet_room_campaign(tmp_path):
    """DIR/quiet/<device>/ holds the same devices in a quiet room: the report says whether denoising
    recovers the quiet-room scores and order on this campaign."""
    from denoiselab.evaluation.device_sim import PROFILES, record

    root = tmp_path / "campaign"
    (root / "reference").mkdir(parents=True)
    speech = _speech(3)
    rng = np.random.default_rng(0)
    for i, x in enumerate(speech):
        ref = np.concatenate([np.zeros(1600, np.float32), x, np.zeros(800, np.float32)])
        sf.write(root / "reference" / f"u{i}.wav", ref, SR)
        noise = rng.standard_normal(ref.size).astype(np.float32)
        noise = noise * snr_gain(ref, noise, 5.0)
        for name in ("studio_mic", "headset", "phone_nb"):
            for room, at_mic in (("", ref + noise), ("quiet/", ref)):
                y, rate = record(PROFILES[name], at_mic, SR, np.random.default_rng(i))
                (root / room / name).mkdir(parents=True, exist_ok=True)
                sf.write(root / room / name / f"u{i}.wav", y, rate)
    out = tmp_path / "out"
    _, devs = evaluate_devices(root, out, denoise=wiener_leading, dnsmos=False)
    assert sorted(d["device"] for d in devs) == ["headset", "phone_nb", "studio_mic"]  # quiet/ is no device
    cal = _rows(out / "calibration.csv")[0]
    assert int(cal["devices"]) == 3 and float(cal["mae_before"]) > 0 and cal["trust_denoised"] in ("True", "False")
    md = (out / "report.md").read_text()
    assert "Calibration on this campaign's quiet-room recordings" in md and "Verdict:" in md
    assert (out / "quiet_per_device.csv").is_file()


def test_another_tools_outputs_score_as_its_function_would(tmp_path):
    """processed=DIR (e.g. DeepFilterNet's outputs from the peers harness): each recording's output is
    found by its path under DIR, at any rate and extension, and scored as if the tool had been called
    in-process: same per-device and quiet-room scores, the folder named as the denoiser."""
    from denoiselab.core.audio import read
    from denoiselab.evaluation.device_sim import PROFILES, record

    root, proc = tmp_path / "campaign", tmp_path / "wiener_outputs"
    (root / "reference").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i, x in enumerate(_speech(2)):
        ref = np.concatenate([np.zeros(1600, np.float32), x, np.zeros(800, np.float32)])
        sf.write(root / "reference" / f"u{i}.wav", ref, SR)
        noise = rng.standard_normal(ref.size).astype(np.float32)
        for name in ("headset", "phone_nb"):
            for room, at_mic in (("", ref + noise * snr_gain(ref, noise, 5.0)), ("quiet/", ref)):
                y, rate = record(PROFILES[name], at_mic, SR, np.random.default_rng(i))
                (root / room / name).mkdir(parents=True, exist_ok=True)
                sf.write(root / room / name / f"u{i}.wav", y, rate)
                # the other tool's outputs: float wav at the recording's rate, the telephone's as 16 kHz flac
                out = wiener_leading(y, rate)
                (proc / room / name).mkdir(parents=True, exist_ok=True)
                if rate == SR:
                    sf.write(proc / room / name / f"u{i}.wav", out, rate, subtype="FLOAT")
                else:
                    sf.write(proc / room / name / f"u{i}.flac", resample(out, rate, SR), SR)
    assert read(root / "phone_nb" / "u0.wav")[1] == 8000  # the resampled path is exercised
    _, direct = evaluate_devices(root, tmp_path / "direct", denoise=wiener_leading, dnsmos=False)
    _, outside = evaluate_devices(root, tmp_path / "outside", processed=proc, dnsmos=False)
    for d, o in zip(direct, outside):
        assert d["device"] == o["device"]
        assert o["pesq_wb_after"] == pytest.approx(d["pesq_wb_after"], abs=0.01 if d["device"] == "headset" else 0.1)
        assert o["pesq_wb_after"] != pytest.approx(o["pesq_wb_before"], abs=0.02)  # the outputs were used
    quiet_d = [float(r["estoi_after"]) for r in _rows(tmp_path / "direct" / "quiet_per_device.csv")]
    quiet_o = [float(r["estoi_after"]) for r in _rows(tmp_path / "outside" / "quiet_per_device.csv")]
    assert quiet_o == pytest.approx(quiet_d, abs=0.01)
    assert "room noise removed by wiener_outputs" in (tmp_path / "outside" / "report.md").read_text()
    (proc / "quiet" / "headset" / "u1.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"no output for recording quiet/headset/u1.wav \(1 of 8"):
        evaluate_devices(root, tmp_path / "missing", processed=proc, dnsmos=False)


def test_without_a_model_choice_the_device_evaluation_model_is_used_and_named():
    from denoiselab.core.model_files import DEVICE_EVAL_MODEL
    from denoiselab.evaluation.device import build_denoiser

    if not DEVICE_EVAL_MODEL.is_file():
        pytest.skip("no device-evaluation model shipped")
    _, info = build_denoiser(None, None, "cpu", 1.0, None)
    assert info["denoiser"].endswith("device_eval.pt")
    _, general = build_denoiser("default", None, "cpu", 1.0, None)
    assert general["denoiser"].endswith("default.pt")


def test_a_manifest_naming_files_that_do_not_exist_is_refused_before_scoring(tmp_path):
    """A typo in a lab's manifest.csv (a recording or a reference that is not there) stops the run naming the
    lines, instead of 'unreadable audio (System error.)' per file and a device ranked with no recordings."""
    import numpy as np
    import soundfile as sf

    from denoiselab.core.errors import UserError
    from denoiselab.evaluation.device import discover

    (tmp_path / "phone").mkdir()
    (tmp_path / "reference").mkdir()
    sf.write(tmp_path / "phone" / "a.wav", np.zeros(1600, np.float32), 16000)
    sf.write(tmp_path / "reference" / "a.wav", np.zeros(1600, np.float32), 16000)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("device,file,reference\nphone,phone/a.wav,reference/a.wav\n")
    assert [r.device for r in discover(tmp_path)] == ["phone"]
    manifest.write_text("device,file,reference\nphone,phone/a.wav,reference/a.wav\nphone,phone/b.wav,reference/a.wav\n"
                        "laptop,phone/a.wav,reference/typo.wav\n")
    with pytest.raises(UserError, match=r"names 2 file\(s\) that do not exist: line 3: .*b\.wav; line 4: .*typo\.wav"):
        discover(tmp_path)
    from denoiselab.core import audio

    for read in (audio.read, audio.info):  # and anywhere else a path is gone: said so, not libsndfile's words
        with pytest.raises(audio.AudioError, match="b.wav: no such file"):
            read(tmp_path / "phone" / "b.wav")


def test_recordings_without_reference_are_said_before_scoring_and_counted_at_the_end(devices_dir, report_dir):
    """A recording named differently from its reference silently loses PESQ, ESTOI and SI-SDR: said before
    hours of scoring, and counted in the console's last lines with the refused ones."""
    from denoiselab.evaluation.device import discover, unreferenced
    from denoiselab.evaluation.device_report import outcome

    root, _ = devices_dir
    recs = discover(root)
    note = unreferenced(recs, root, root / "reference")
    assert note is not None and f"1 of {len(recs)} recordings have no reference" in note
    assert "field/street.wav" in note and f"{root / 'reference'}/ with the same file name" in note
    assert unreferenced([r for r in recs if r.reference is not None], root, root / "reference") is None
    only_field = [r for r in recs if r.device == "field"]
    assert unreferenced(only_field, root, root / "reference").startswith("no recording has a reference")
    rows = _rows(report_dir / "per_recording.csv")
    assert outcome(rows) == (f"{len(rows)} recordings: {len(rows) - 2} scored against their reference, 1 without a "
                             "reference (non-intrusive scores only), 1 refused (the report says why)")


@pytest.mark.parametrize("setting,said", [
    ({"max_delay_s": 0.0}, "max_delay_s must be > 0"), ({"min_confidence": -1.0}, "min_confidence must be >= 0"),
    ({"min_correlation": 2.0}, r"min_correlation is a correlation, in \[-1, 1\]")])
def test_alignment_settings_that_align_nothing_or_refuse_everything_are_refused(tmp_path, setting, said):
    """max_delay_s=0 searched every lag with the negative ones mislabelled (a recording 300 samples late
    came out 'aligned' by luck); min_confidence < 0 accepted any reference; min_correlation > 1 refused all."""
    from denoiselab.core.errors import UserError
    from denoiselab.evaluation.alignment import gcc_phat

    with pytest.raises(UserError, match=said):
        evaluate_devices(tmp_path / "nothing", tmp_path / "out", **setting)
    with pytest.raises(ValueError, match="at least one sample"):
        gcc_phat(np.ones(100), np.ones(100), max_delay=0)


def test_a_quiet_room_sharing_fewer_than_two_devices_is_said_not_silently_dropped():
    """quiet/other/ next to a campaign of mic/: the calibration section vanished without a word."""
    from denoiselab.evaluation.device_report import _markdown
    from denoiselab.evaluation.device_stats import calibration

    def dev(name, score):
        return {"device": name, "pesq_wb_before": score, "pesq_wb_after": score}

    cal = calibration([dev("mic", 2.0)], [dev("other", 3.0)])
    assert cal["devices"] == 0 and cal["quiet_room_devices"] == "other" and "mae_before" not in cal
    md = _markdown([], [], [], [], {}, [], cal)
    assert "No calibration: the quiet-room recordings share 0 device(s) with this campaign (quiet room: other)" in md
