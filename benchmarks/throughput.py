"""Training throughput per backbone: clips/s of 5 s audio, share of step time waiting for data, peak RSS.

    python benchmarks/throughput.py [--data ../shared/data] [--steps 20] [--batch 8] [--workers 2]
                                    [--bands linear,erb] [--accelerator gpu --precision 32-true,bf16-mixed]
                                    [--out FILE] [--skip-cache]

Runs real Lightning training steps (default configs of every backbone) on the folder data and
writes benchmarks/results/throughput.md (or --out): one row per backbone x front-end bands x precision.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _results import publish  # noqa: E402


class StepTimer(L.Callback):
    """Wall time per step, and the part of it spent waiting for the next batch."""

    def __init__(self, skip: int = 3):
        self.skip, self.steps, self.wait, self.total = skip, 0, 0.0, 0.0
        self._end = None

    def on_train_batch_start(self, trainer, module, batch, idx):
        now = time.perf_counter()
        if self._end is not None and self.steps >= self.skip:
            self.wait += now - self._end
        self._start = now

    def on_train_batch_end(self, trainer, module, outputs, batch, idx):
        now = time.perf_counter()
        if self.steps >= self.skip:
            self.total += now - (self._end if self._end is not None else self._start)
        self._end = now
        self.steps += 1


def measure(net: str, data: Path, steps: int, batch: int, workers: int, cache: Path, bands: str = "linear",
            accelerator: str = "cpu", precision: str = "32-true") -> dict:
    from omegaconf import OmegaConf

    from denoiselab.training.data.datamodule import MixtureDataModule
    from denoiselab.training.losses import NoiseMaskLoss
    from denoiselab.training.module import DenoiseModule

    net_cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "model" / "net" / f"{net}.yaml"))
    net_cfg.pop("_target_"), net_cfg.pop("_partial_")
    model = DenoiseModule(net={"name": net, "kwargs": net_cfg},
                          frontend={"n_fft": 512, "hop_length": 128, "bands": bands},
                          loss=NoiseMaskLoss(), optimizer=lambda params: torch.optim.AdamW(params, lr=1e-3))
    dm = MixtureDataModule(clean=data / "train" / "clean", noise=data / "train" / "noise",
                           val_clean=data / "dev" / "clean", val_noise=data / "dev" / "noise", clip_seconds=5.0,
                           batch_size=batch, num_workers=workers, cache_dir=str(cache), max_val_items=8)
    timer = StepTimer()
    trainer = L.Trainer(max_steps=steps + timer.skip, accelerator=accelerator, devices=1, precision=precision,
                        logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        callbacks=[timer], use_distributed_sampler=False)
    trainer.fit(model, datamodule=dm)
    measured = timer.steps - timer.skip
    return {"net": net, "bands": bands, "precision": precision, "params": model.denoiser.num_parameters(),
            "clips_per_s": measured * batch / timer.total, "data_wait": timer.wait / timer.total,
            "step_s": timer.total / measured}


def cache_timing(data: Path, cache: Path) -> tuple[float, float, float]:
    """Seconds to load the training corpus: decode + resample (no cache), first cached pass, warm cache."""
    import shutil

    from denoiselab.core.sources import AudioCache, load_tracks

    roots = [data / "train" / "clean", data / "train" / "noise"]
    tmp = cache / "bench_cache_probe"
    shutil.rmtree(tmp, ignore_errors=True)
    times = []
    for c in (AudioCache(None, 16000), AudioCache(tmp, 16000), AudioCache(tmp, 16000)):
        t0 = time.perf_counter()
        for r in roots:
            tracks = load_tracks(r, c, progress=False)
            sum(float(t.samples[::4000].sum()) for t in tracks)  # touch the data
        times.append(time.perf_counter() - t0)
    shutil.rmtree(tmp, ignore_errors=True)
    return times[0], times[1], times[2]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--nets", default="unet,resnet,lstm,crn")
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "denoiselab"))
    p.add_argument("--bands", default="linear", help="front ends to compare: linear,erb")
    p.add_argument("--accelerator", default="cpu")
    p.add_argument("--precision", default="32-true", help="e.g. 32-true,bf16-mixed (GPU)")
    p.add_argument("--out", default=None, help="write here instead of benchmarks/results/throughput.md")
    p.add_argument("--skip-cache", action="store_true", help="leave out the decode-cache timing")
    args = p.parse_args()
    rows = [measure(n, Path(args.data), args.steps, args.batch, args.workers, Path(args.cache), b, args.accelerator,
                    prec)
            for n in args.nets.split(",") for b in args.bands.split(",") for prec in args.precision.split(",")]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    device = (torch.cuda.get_device_name(0) if args.accelerator in ("gpu", "cuda") and torch.cuda.is_available()
              else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads")
    lines = [f"# Training throughput ({args.accelerator})", "",
             f"`python benchmarks/throughput.py {' '.join(sys.argv[1:])}` on {device}, "
             f"torch {torch.__version__}; 5 s clips at 16 kHz from `../shared/data/train`, "
             "STFT 512/128, default backbone sizes, AdamW, reference loss.", "",
             "| backbone | features | precision | parameters | clips/s (5 s) | s/step | data wait (share of step) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        feats = "257 bins" if r["bands"] == "linear" else "32 ERB bands"
        lines.append(f"| {r['net']} | {feats} | {r['precision']} | {r['params']:,} | {r['clips_per_s']:.2f} | "
                     f"{r['step_s']:.2f} | {100 * r['data_wait']:.1f} % |")
    lines += ["", f"Peak resident memory of the whole benchmark process: {peak_mb:.0f} MB."]
    if not args.skip_cache:
        cold, first, warm = cache_timing(Path(args.data), Path(args.cache))
        lines += ["", "## Decode cache", "",
                  "Loading `../shared/data/train` (497 clean + 823 noise FLAC files, 140 min) before an epoch:", "",
                  "| pass | seconds |", "|---|---|",
                  f"| no cache (decode + resample every time) | {cold:.1f} |",
                  f"| first pass with the cache (decode + write .npy) | {first:.1f} |",
                  f"| later epochs / runs (memory-mapped .npy) | {warm:.1f} |"]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    else:
        publish("throughput.md", lines)


if __name__ == "__main__":
    main()
