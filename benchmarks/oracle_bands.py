"""What a gain's frequency resolution can buy at best: the oracle magnitude gain (|clean| / |noisy| clipped to
[0, 1], noisy phase) on the 257 linear bins, and the same gain as a front end of `n_bands` ERB bands can
express it (the bin gains pooled by the band matrix and spread back to bins, as an ERB model's output is),
scored on the dry and room dev sets of benchmarks/_devsets.py. No model is trained: the gap between rows is
the ceiling a band layout puts on any model that uses it.

    python benchmarks/oracle_bands.py [--bands 32,48,64] [--hop 256] [--max-files N] [--results oracle_bands.md]
                                      [--noise NAME=DIR,...]

--noise scores other sets instead: the dev speech mixed with each DIR's noise as denoiselab-evaluate mixes it
(one mixture per utterance, SNR cycling -5..15 dB, seed 2024), e.g. the recordings a targeted fine-tune
learnt (benchmarks/targeted.py's "recorded noise" condition), to see how far a model is from its ceiling.

--template (with --noise) asks whether knowing the noise recording buys bin resolution back: the band gain's
noise part (1 - gain) is shaped within each band by the recording's long-term spectrum (each bin's noise
magnitude over its band-smoothed value, from all of DIR's noise), so a band with a noise peak cuts harder on
the peak's bins and softer between them. It uses the very recordings the mixtures are made of: the most
favourable case for a fixed per-bin noise template added to a band model.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from denoiselab.core.audio import find_audio, load_mono  # noqa: E402
from denoiselab.core.rooms import RoomAugment  # noqa: E402
from denoiselab.core.spectral import SpectralFrontEnd  # noqa: E402
from denoiselab.evaluation import metrics as M  # noqa: E402
from denoiselab.evaluation.evaluate import mixed_items  # noqa: E402

from _devsets import DATA  # noqa: E402
from _results import publish  # noqa: E402

SNRS = [-5, 0, 5, 10, 15]
#: where denoiselab-evaluate caches the held-out rooms (conf/paths: cache_dir)
CACHE = os.environ.get("DENOISELAB_CACHE_DIR", str(Path.home() / ".cache" / "denoiselab"))


def oracle_gain(noisy: np.ndarray, clean: np.ndarray, front: SpectralFrontEnd
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noisy complex spectrum, oracle gain |C| / |S| on bins clipped to [0, 1], phase-sensitive gain
    Re(C S*) / |S|^2 clipped to [0, 1]). The second is the least-squares best real gain in [0, 1] on the noisy
    phase, bin by bin: the ceiling of SNR-type figures (SI-SDR) for any model that scales |S| and keeps the
    noisy phase, as this project's default processor does."""
    s = front.stft(torch.from_numpy(noisy))
    c = front.stft(torch.from_numpy(clean))
    power = s.abs().square().clamp_min(1e-16)
    return (s, (c.abs() / s.abs().clamp_min(1e-8)).clamp(0.0, 1.0),
            ((c * s.conj()).real / power).clamp(0.0, 1.0))


def through_bands(gain: torch.Tensor, band_front: SpectralFrontEnd) -> torch.Tensor:
    """The bin gain as an ERB front end can express it: pooled to bands, spread back to bins."""
    return band_front.to_bins(band_front.to_bands(gain))


def band_widths_hz(band_front: SpectralFrontEnd, lo: float = 1000.0, hi: float = 3000.0) -> tuple[float, float]:
    """Narrowest and widest support (Hz) of the bands centred between lo and hi: how finely gains can vary there."""
    pool = band_front.band_pool
    bin_hz = band_front.config["sample_rate"] / band_front.n_fft
    centres = (pool * torch.arange(pool.shape[1])).sum(1) / pool.sum(1) * bin_hz
    widths = (pool > 0).sum(1).float() * bin_hz
    inside = widths[(centres >= lo) & (centres <= hi)]
    return float(inside.min()), float(inside.max())


def noise_template(noise_dir: Path, front: SpectralFrontEnd, band_front: SpectralFrontEnd) -> torch.Tensor:
    """[F] each bin's long-term noise magnitude over its band-smoothed value (pooled and spread back as a
    gain is): above 1 on a noise peak inside a band, below 1 between peaks; all of noise_dir's recordings."""
    power, frames = 0.0, 0
    for path in find_audio(noise_dir):
        spec = front.stft(torch.from_numpy(load_mono(path, band_front.config["sample_rate"]))).abs().square()
        power, frames = power + spec.sum(-1), frames + spec.shape[-1]
    mean = power / frames
    smooth = band_front.to_bins(band_front.to_bands(mean[:, None]))[:, 0]
    return (mean / smooth.clamp_min(1e-12)).sqrt()


def shaped(gain_bins: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """A band gain (already on bins) whose noise part is shaped by the template: 1 - (1 - g) * template."""
    return 1.0 - ((1.0 - gain_bins) * template[:, None]).clamp(0.0, 1.0)


def score(items, band_fronts: dict[int, SpectralFrontEnd], hop: int, psm_rows: bool = False,
          template: torch.Tensor | None = None) -> dict[str, dict[str, float]]:
    front = SpectralFrontEnd(hop_length=hop)
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for it in items:
        spec, gain, psm = oracle_gain(it.noisy, it.clean, front)
        systems = {"noisy": it.noisy}
        # each gain on bins, then through each band layout (and shaped by the template, where given)
        for label, bin_gain in (("oracle gain", gain), ("phase-sensitive gain", psm))[:2 if psm_rows else 1]:
            systems[f"{label}, 257 linear bins"] = front.istft(spec * bin_gain, len(it.noisy)).numpy()
            for nb, band_front in band_fronts.items():
                banded = through_bands(bin_gain, band_front)
                systems[f"{label} through {nb} ERB bands"] = front.istft(spec * banded, len(it.noisy)).numpy()
                if template is not None:
                    systems[f"{label} through {nb} ERB bands, noise template"] = front.istft(
                        spec * shaped(banded, template), len(it.noisy)).numpy()
        for name, out in systems.items():
            rows.setdefault(name, []).append((M.pesq(it.clean, out, it.rate), M.stoi(it.clean, out, it.rate, True),
                                              M.si_sdr(it.clean, out)))
    return {k: dict(zip(("pesq_wb", "estoi", "si_sdr"), np.mean(np.array(v), 0))) for k, v in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bands", default="32,48,64")
    ap.add_argument("--hop", type=int, default=256, help="STFT hop (the default model's: n_fft 512, hop 256)")
    ap.add_argument("--max-files", type=int, default=None)
    ap.add_argument("--results", default="oracle_bands.md")
    ap.add_argument("--noise", default=None, help="NAME=DIR,...: dry sets of dev speech with each DIR's noise")
    ap.add_argument("--phase-sensitive", action="store_true",
                    help="also the phase-sensitive gain (the least-squares best real gain on the noisy phase)")
    ap.add_argument("--template", action="store_true",
                    help="with --noise and one band layout: also each band gain shaped by the noise's own "
                         "long-term spectrum within its bands")
    args = ap.parse_args()
    if args.template and (not args.noise or "," in args.bands):
        ap.error("--template needs --noise and a single --bands layout")
    layouts = [int(b) for b in args.bands.split(",")]
    band_fronts = {nb: SpectralFrontEnd(hop_length=args.hop, bands="erb", n_bands=nb) for nb in layouts}
    noise_dirs = {f"{name} (dry, -5..15 dB)": Path(folder)
                  for name, folder in (pair.split("=", 1) for pair in args.noise.split(","))} if args.noise else {}
    sets = {
        title: mixed_items(DATA / "dev" / "clean", folder, SNRS, 2024, max_files=args.max_files, every_snr=False)
        for title, folder in noise_dirs.items()
    } if args.noise else {
        "dev (dry, -5..15 dB)": mixed_items(DATA / "dev" / "clean", DATA / "dev" / "noise", SNRS, 2024,
                                            max_files=args.max_files, every_snr=False),
        "dev in held-out rooms (-5..15 dB)": mixed_items(DATA / "dev" / "clean", DATA / "dev" / "noise", SNRS, 2024,
                                                         max_files=args.max_files, every_snr=False,
                                                         rooms=RoomAugment(p=1.0, seed=1000, cache_dir=CACHE)),
    }
    lines = ["# Oracle gains: what the band layout of a gain costs at best", "",
             f"Machine: {platform.machine()}, CPU; {date.today()}. Command: `python benchmarks/oracle_bands.py "
             f"--bands {args.bands} --hop {args.hop}"
             + (f" --max-files {args.max_files}" if args.max_files else "")
             + (f" --noise {args.noise}" if args.noise else "")
             + (" --phase-sensitive" if args.phase_sensitive else "")
             + (" --template" if args.template else "") + "`. "
             "Oracle gain = |clean| / |noisy| per bin clipped to [0, 1] on the noisy phase "
             "(n_fft 512, Hann, hop as in the command); "
             "'through N ERB bands' = that gain pooled by the front end's band matrix and spread back to bins, "
             "the best an N-band model's output can approximate it this way"
             + ("; phase-sensitive gain = Re(C S*) / |S|² clipped to [0, 1], the least-squares best real gain "
                "on the noisy phase bin by bin (the SI-SDR ceiling of a model that scales |S| and keeps the noisy "
                "phase)" if args.phase_sensitive else "")
             + ("; 'noise template' = the band gain's noise part (1 - gain) times each bin's long-term noise "
                "magnitude over its band-smoothed value, from the same recordings the mixtures use (the "
                "most favourable case for a fixed per-bin template)" if args.template else "")
             + ". No model is involved.", "",
             "Band support (nonzero bins of a band's triangle) for bands centred between 1 and 3 kHz: "
             + "; ".join(f"{nb} bands {lo:.0f}–{hi:.0f} Hz" for nb, band_front in band_fronts.items()
                         for lo, hi in [band_widths_hz(band_front)])
             + " (a voice's harmonics are 100–250 Hz apart).", ""]
    for title, items in sets.items():
        template = (noise_template(noise_dirs[title], SpectralFrontEnd(hop_length=args.hop),
                                   next(iter(band_fronts.values()))) if args.template else None)
        res = score(items, band_fronts, args.hop, args.phase_sensitive, template)
        lines += [f"## {title}, {len(items)} mixtures", "", "| system | PESQ-WB | ESTOI | SI-SDR (dB) |",
                  "|---|---|---|---|"]
        lines += [f"| {k} | {v['pesq_wb']:.3f} | {v['estoi']:.3f} | {v['si_sdr']:.2f} |" for k, v in res.items()]
        lines.append("")
    publish(args.results, lines)


if __name__ == "__main__":
    main()
