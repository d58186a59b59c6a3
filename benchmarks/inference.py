"""Inference speed and memory: RTF per backbone on 1 and 2 threads (60 s file), ONNX Runtime vs
PyTorch, and peak resident memory of denoiselab-enhance on 10- and 60-minute files.

    python benchmarks/inference.py [--skip-memory]

Writes benchmarks/results/inference.md. RTF = processing seconds / audio seconds (model load
excluded, after a warm-up); default model sizes, STFT 512/128, 16 kHz.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _results import publish  # noqa: E402

NETS = ("unet", "dpunet", "resnet", "lstm", "crn")


def default_denoiser(net: str):
    from denoiselab.core.denoiser import Denoiser

    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "model" / "net" / f"{net}.yaml"))
    cfg.pop("_target_"), cfg.pop("_partial_")
    torch.manual_seed(0)
    return Denoiser(net={"name": net, "kwargs": cfg}, frontend={"n_fft": 512, "hop_length": 128}).eval()


def rtf(enhancer, x: np.ndarray, sr: int, repeats: int = 2) -> float:
    enhancer.enhance(x[: sr * 5], sr)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        enhancer.enhance(x, sr)
        best = min(best, time.perf_counter() - t0)
    return best / (x.size / sr)


def onnx_denoiser(den, path: Path, threads: int):
    """The same model with its mask estimator running in onnxruntime (STFT/iSTFT in torch)."""
    from denoiselab.core.denoiser import Denoiser
    from denoiselab.core.model_files import OnnxMaskEstimator

    return Denoiser.from_spec(den.spec(), mask_estimator=OnnxMaskEstimator(path, threads=threads)).eval()


def describe(den) -> str:
    """What is timed, read off the model itself: backbone and STFT (never a hand-written label)."""
    fe = den.frontend
    return f"{den.net_name}, STFT {fe.n_fft}/{fe.hop_length}"


def speed_rows() -> list[dict]:
    from denoiselab.core.enhancer import Enhancer
    from denoiselab.core.model_files import export_onnx

    sr = 16000
    x = (np.random.default_rng(0).standard_normal(60 * sr) * 0.1).astype(np.float32)
    rows = []
    for net in NETS:
        row = {"net": net}
        den = default_denoiser(net)
        row["params"] = den.num_parameters()
        for threads in (1, 2):
            torch.set_num_threads(threads)
            row[f"torch_{threads}"] = rtf(Enhancer(den), x, sr)
        with tempfile.TemporaryDirectory() as tmp:
            path, _ = export_onnx(den, Path(tmp) / "m.onnx")
            for threads in (1, 2):
                torch.set_num_threads(threads)
                row[f"onnx_{threads}"] = rtf(Enhancer(onnx_denoiser(den, path, threads)), x, sr)
        rows.append(row)
        print(row, flush=True)
    from denoiselab.core.model_files import DEFAULT_MODEL, load_denoiser

    if DEFAULT_MODEL.is_file():
        shipped = load_denoiser()
        row = {"net": f"shipped default ({describe(shipped)})", "params": shipped.num_parameters()}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            row[f"torch_{threads}"] = rtf(Enhancer(load_denoiser()), x, sr)
        with tempfile.TemporaryDirectory() as tmp:
            path, _ = export_onnx(shipped, Path(tmp) / "m.onnx")
            for threads in (1, 2):
                torch.set_num_threads(threads)
                row[f"onnx_{threads}"] = rtf(Enhancer(onnx_denoiser(shipped, path, threads)), x, sr)
        rows.append(row)
        print(row, flush=True)
    torch.set_num_threads(os.cpu_count() or 1)
    return rows


def peak_rss_mb(minutes: int, ckpt: Path, tmp: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of `denoiselab-enhance` on a `minutes`-long 16 kHz file."""
    src = tmp / f"long_{minutes}min.wav"
    with sf.SoundFile(src, "w", samplerate=16000, channels=1, subtype="PCM_16") as fh:
        rng = np.random.default_rng(minutes)
        for _ in range(minutes):
            fh.write((rng.standard_normal(60 * 16000) * 0.1).astype(np.float32))
    code = (f"import resource,subprocess,sys,time; t=time.time(); "
            f"r=subprocess.run([sys.executable,'-m','denoiselab.cli.enhance',{str(src)!r},'--ckpt',{str(ckpt)!r},"
            f"'--out',{str(tmp / f'out{minutes}')!r},'--quiet']); "
            f"print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024, time.time()-t, r.returncode)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    if out[2] != "0":
        raise RuntimeError(f"enhance failed on the {minutes}-minute file")
    src.unlink()
    return float(out[0]), float(out[1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--skip-memory", action="store_true")
    args = p.parse_args()
    rows = speed_rows()
    lines = ["# Inference speed and memory (CPU)", "",
             f"`python benchmarks/inference.py` on {platform.machine()} ({os.cpu_count()} cores, this workplace's "
             f"2-core box), torch {torch.__version__}. RTF = compute time / audio time for a 60 s, 16 kHz file "
             "(best of 2, after a warm-up; lower is better). Default backbone sizes, STFT 512/128.", "",
             "| backbone | parameters | PyTorch 1 thread | PyTorch 2 threads | ONNX Runtime 1 thread "
             "| ONNX Runtime 2 threads |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['params']:,} | {r['torch_1']:.4f} | {r['torch_2']:.4f} | "
                     f"{r['onnx_1']:.4f} | {r['onnx_2']:.4f} |")
    unet = rows[0]
    lines += ["", f"Target RTF ≤ 0.05 on 1 thread: default U-Net config (hop 128) {unet['torch_1']:.4f} in PyTorch, "
              f"{unet['onnx_1']:.4f} in ONNX Runtime"]
    if len(rows) > len(NETS):
        shipped = rows[-1]
        lines[-1] += (f"; the shipped default model {shipped['torch_1']:.4f} in PyTorch, "
                      f"{shipped['onnx_1']:.4f} in ONNX Runtime.")
    lines += ["Chunks of 10 s with the enhance default context on each side (the model's receptive field where "
              "it is bounded, at least 1.5 s)."]
    if not args.skip_memory:
        from denoiselab.core.model_files import save_inference

        with tempfile.TemporaryDirectory() as tmp_s:
            tmp = Path(tmp_s)
            ckpt = save_inference(default_denoiser("unet"), tmp / "unet.pt")
            mem = {m: peak_rss_mb(m, ckpt, tmp) for m in (10, 60)}
        lines += ["", "## Peak memory of `denoiselab-enhance` (default U-Net config, streaming, 10 s chunks)", "",
                  "| file length | peak resident memory | wall time (2 threads) |", "|---|---|---|"]
        for m, (rss, wall) in mem.items():
            lines.append(f"| {m} min | {rss:.0f} MB | {wall:.0f} s |")
        lines += ["", f"Target: under 1.5 GB and flat with length — measured {mem[10][0]:.0f} MB (10 min) vs "
                  f"{mem[60][0]:.0f} MB (60 min)."]
    publish("inference.md", lines)


if __name__ == "__main__":
    main()
