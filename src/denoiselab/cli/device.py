"""denoiselab-device: score audio devices from their recordings, before and after denoising.

    denoiselab-device devices=DIR [ckpt=PATH|default] [dnsmos=false] hydra.run.dir=OUT

DIR holds one folder per device (+ optional reference/ with the played signals, same file names),
or a manifest.csv with columns device,file,reference. Writes per_recording.csv, per_device.csv,
report.md, report.html and PNGs to the run dir.
"""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig

from denoiselab.cli.common import accelerator_of
from denoiselab.cli.errors import hydra_cli
from denoiselab.evaluation import report
from denoiselab.evaluation.device import evaluate_devices


def _device(cfg: DictConfig) -> None:
    out = Path(cfg.paths.output_dir)
    rows, devs = evaluate_devices(cfg.devices, out, cfg.get("ckpt"), cfg.get("baseline"), accelerator_of(cfg),
                                  float(cfg.strength), cfg.get("atten_limit_db"), float(cfg.min_correlation),
                                  float(cfg.max_delay_s), bool(cfg.dnsmos))
    from rich.console import Console

    shown = [c for c in ("pesq_wb_before", "pesq_wb_after", "dnsmos_ovrl_before", "dnsmos_ovrl_after", "snr_est_before")
             if any(not math.isnan(d.get(c, math.nan)) for d in devs)]
    Console().print(report.rich_table(devs, ["device", "n", *shown], "denoiselab-device"))
    print(f"report: {out / 'report.html'}")


main = hydra_cli("denoiselab-device", "device", _device)


if __name__ == "__main__":
    main()
