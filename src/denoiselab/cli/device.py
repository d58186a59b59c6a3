"""denoiselab-device: score audio devices from their recordings, before and after denoising.

    denoiselab-device devices=DIR [ckpt=PATH|default] [dnsmos=false] hydra.run.dir=OUT
    denoiselab-device devices=DIR finetune.noise=ROOM_NOISE_DIR hydra.run.dir=OUT   # fine-tune first
    denoiselab-device devices=DIR processed=PROCESSED_DIR hydra.run.dir=OUT  # another tool's outputs

DIR holds one folder per device (+ optional reference/ with the played signals, same file names),
or a manifest.csv with columns device,file,reference. Writes per_recording.csv, per_device.csv,
report.md, report.html and PNGs to the run dir.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

from denoiselab.cli.common import accelerator_of
from denoiselab.cli.errors import hydra_cli
from denoiselab.core.errors import UserError
from denoiselab.evaluation import report
from denoiselab.evaluation.device import evaluate_devices
from denoiselab.evaluation.device_report import outcome


def finetune_on_room_noise(cfg: DictConfig, out: Path) -> tuple[str, str]:
    """Fine-tune the chosen model on the room's noise with the campaign's references as speech (a
    denoiselab-train run in OUT/finetune); returns (checkpoint, how it was made)."""
    from denoiselab.core.checkpoints import best_checkpoint
    from denoiselab.core.files import sha1_of
    from denoiselab.core.model_files import DEVICE_EVAL_MODEL, resolve_model_path
    from denoiselab.evaluation.device import discover

    ft = cfg.finetune
    speech = ft.get("speech")
    if not speech:
        # absolute: a list file's relative entries are read against the list's own folder, not the cwd
        refs = sorted({str(Path(r.reference).resolve()) for r in discover(cfg.devices) if r.reference is not None})
        if not refs:
            raise UserError("finetune.noise needs speech: the campaign has no reference signals; "
                            "give finetune.speech=DIR")
        speech = out / "finetune_speech.txt"
        speech.parent.mkdir(parents=True, exist_ok=True)
        speech.write_text("\n".join(refs) + "\n")
    chosen = cfg.get("ckpt") or (DEVICE_EVAL_MODEL if DEVICE_EVAL_MODEL.is_file() else None)
    start = resolve_model_path(chosen)
    run_dir = out / "finetune"
    cmd = [sys.executable, "-m", "denoiselab.cli.train", "experiment=finetune", f"init_from={start}",
           f"data.clean={speech}", f"data.noise={ft.noise}", f"time_budget={ft.time_budget}", "trainer.max_time=null",
           f"finetune.generic_noise={ft.generic_noise}", f"finetune.generic_share={ft.generic_share}",
           f"finetune.builtin_pool={ft.builtin_pool}", f"finetune.distill={ft.distill}",
           f"finetune.keep_start={ft.keep_start}", f"loss={ft.loss}", f"trainer.precision={ft.precision}",
           f"hydra.run.dir={run_dir}", "auto_resume=true",
           # as the device model was trained: device defects in input and target alike, so fine-tuning on
           # the room's noise does not teach it to remove the devices' own hiss, hum and colouring
           "data/device_path=random", "data.device_path.p=0.8", "data.device_path.quiet=0.05", "data/augment=device",
           f"paths.cache_dir={cfg.paths.cache_dir}"]
    print(f"fine-tuning {start.name} on {ft.noise} for {ft.time_budget} (log: {run_dir / 'train.log'})", flush=True)
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise UserError(f"fine-tuning on {ft.noise} failed (exit {proc.returncode}); see {run_dir / 'train.log'}")
    # experiment=finetune decays its lr to the end of the budget: the final state is the model (the
    # monitored best on a few seconds of validation noise is the noisier choice); the best if it is gone
    last = run_dir / "checkpoints" / "last.ckpt"
    chosen_ckpt = last if last.is_file() else best_checkpoint(run_dir) or last
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = max((r.get("step", 0) for r in records), default=0)
    made = (f"fine-tuned from {start} (sha1 {sha1_of(start)}) on the room noise {ft.noise} with "
            f"{'the campaign references' if not ft.get('speech') else ft.speech} as speech: {steps} steps in "
            f"{ft.time_budget}; checkpoint {chosen_ckpt}")
    before = [r["val/si_sdr"] for r in records if r.get("event") == "init_validation" and "val/si_sdr" in r]
    after = [r["val/si_sdr"] for r in records if r.get("event") == "validation" and "val/si_sdr" in r]
    if before and after:  # whether it learnt the room, on mixtures it did not train on
        made += (f"; SI-SDR on its validation mixtures {before[0]:.2f} dB before fine-tuning, "
                 f"{after[-1]:.2f} dB after")
    return str(chosen_ckpt), made


def _device(cfg: DictConfig) -> None:
    out = Path(cfg.paths.output_dir)
    ckpt, made = cfg.get("ckpt"), None
    room_noise = (cfg.get("finetune") or {}).get("noise")
    chosen = [k for k in ("ckpt", "baseline", "processed") if cfg.get(k)] + (["finetune.noise"] if room_noise else [])
    if len(chosen) > 1 and chosen != ["ckpt", "finetune.noise"]:  # a chosen model may be fine-tuned
        raise UserError(f"choose one denoiser: {' and '.join(f'{k}=' for k in chosen)} were given together "
                        "(finetune.noise fine-tunes a model: ckpt= or the shipped one)")
    if room_noise:
        ckpt, made = finetune_on_room_noise(cfg, out)
    rows, devs = evaluate_devices(cfg.devices, out, ckpt, cfg.get("baseline"), accelerator_of(cfg),
                                  float(cfg.strength), cfg.get("atten_limit_db"), cfg.get("min_correlation"),
                                  float(cfg.max_delay_s), bool(cfg.dnsmos), model_story=made,
                                  min_confidence=float(cfg.min_confidence),
                                  denoise_in_band=bool(cfg.denoise_in_band), processed=cfg.get("processed"))
    from rich.console import Console

    shown = [c for c in ("pesq_wb_before", "pesq_wb_after", "dnsmos_ovrl_before", "dnsmos_ovrl_after", "snr_est_before")
             if any(not math.isnan(d.get(c, math.nan)) for d in devs)]
    Console().print(report.rich_table(devs, ["device", "n", *shown], "denoiselab-device"))
    print(outcome(rows))
    print(f"report: {out / 'report.html'}")


main = hydra_cli("denoiselab-device", "device", _device)


if __name__ == "__main__":
    main()
