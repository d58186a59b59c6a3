"""denoiselab-enhance: denoise recordings of any length, rate and channel count.

    denoiselab-enhance INPUT... [--ckpt PATH|default] --out DIR [--overwrite] [--strength S] [--accelerator cpu]

INPUT: files, folders (searched recursively) or glob patterns. Outputs keep the relative path,
sample rate, channel count, length, format and (where libsndfile can write it) the subtype of
each input. Files are read and written in blocks, so memory does not grow with file length.
An output is written under a temporary name and renamed when complete: an interrupted run never
leaves a partial file under the final name. Inputs are never written to. Exit code 0 only when
every input was processed.
"""

from __future__ import annotations

import argparse
import glob
import logging
import sys
import time
from pathlib import Path

import soundfile as sf

from denoiselab.core import audio
from denoiselab.core.enhancer import Enhancer, EnhanceStats, enhance_file
from denoiselab.core.model_files import load_denoiser

log = logging.getLogger("denoiselab.enhance")

#: Writable by libsndfile; other inputs are written as FLAC.
WRITABLE = {"WAV", "FLAC", "OGG", "AIFF", "AU", "W64"}


def collect_inputs(specs: list[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(input file, relative output path) pairs, and messages for inputs that gave nothing."""
    pairs: list[tuple[Path, Path]] = []
    problems: list[str] = []
    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            found = [f for f in audio.find_audio(p)]
            if not found:
                problems.append(f"{p}: no audio files found in this folder "
                                f"(looked for {', '.join(audio.AUDIO_EXTENSIONS)})")
            pairs += [(f, f.relative_to(p)) for f in found]
        elif p.is_file():
            pairs.append((p, Path(p.name)))
        elif glob.has_magic(spec):
            base = Path(_glob_base(spec))
            found = sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file())
            if not found:
                problems.append(f"{spec}: the pattern matches no files")
            pairs += [(f, f.relative_to(base) if f.is_relative_to(base) else Path(f.name)) for f in found]
        else:
            problems.append(f"{spec}: no such file or folder")
    return pairs, problems


def _glob_base(pattern: str) -> str:
    parts = Path(pattern).parts
    base = []
    for part in parts:
        if glob.has_magic(part):
            break
        base.append(part)
    return str(Path(*base)) if base else "."


def output_path(out_dir: Path, rel: Path, info: audio.AudioInfo) -> tuple[Path, str, str | None]:
    fmt = info.format if info.format in WRITABLE else "FLAC"
    target = out_dir / rel
    if fmt != info.format:
        target = target.with_suffix(".flac")
    subtype = info.subtype if sf.check_format(fmt, info.subtype) else None
    return target, fmt, subtype


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out).expanduser()
    pairs, problems = collect_inputs(args.inputs)
    for msg in problems:
        log.error("%s", msg)
    inputs_resolved = {p.resolve() for p, _ in pairs}
    denoiser = load_denoiser(args.ckpt)
    enhancer = Enhancer(denoiser, accelerator=args.accelerator, chunk_seconds=args.chunk_seconds,
                        context_seconds=args.context_seconds, batch_size=args.batch_size,
                        strength=args.strength, atten_limit_db=args.atten_limit_db)
    stats = EnhanceStats()
    skipped = 0
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), transient=not sys.stderr.isatty(), disable=args.quiet) as bar:
        files_task = bar.add_task("files", total=len(pairs))
        for src, rel in pairs:
            try:
                info = audio.info(src)
                dst, fmt, subtype = output_path(out_dir, rel, info)
                if dst.resolve() in inputs_resolved or dst.resolve() == src.resolve():
                    raise audio.AudioError(src, f"output {dst} would overwrite an input; choose another --out")
                if dst.exists() and not args.overwrite:
                    log.info("skip %s: %s exists (use --overwrite to replace it)", src, dst)
                    skipped += 1
                    bar.advance(files_task)
                    continue
                file_task = bar.add_task(f"  {rel}", total=max(1, info.frames))
                t0 = time.perf_counter()
                secs = enhance_file(enhancer, src, dst, fmt, subtype, args.downmix,
                                    lambda n, task=file_task: bar.advance(task, n))
                stats.seconds_compute += time.perf_counter() - t0
                stats.seconds_audio += secs
                stats.files += 1
                bar.remove_task(file_task)
            except (audio.AudioError, sf.LibsndfileError, RuntimeError, ValueError, OSError) as err:
                stats.failures.append((str(src), str(err)))
                log.error("FAILED %s", err)
            bar.advance(files_task)
    _summary(stats, skipped, out_dir, args.quiet)
    ok = not stats.failures and not problems
    return 0 if ok else 1


def _summary(stats: EnhanceStats, skipped: int, out_dir: Path, quiet: bool) -> None:
    if quiet:
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="denoiselab-enhance", show_header=False)
    t.add_row("enhanced files", str(stats.files))
    t.add_row("skipped (exist)", str(skipped))
    t.add_row("failed", str(len(stats.failures)))
    t.add_row("audio", f"{stats.seconds_audio / 3600:.3f} h ({stats.seconds_audio:.1f} s)")
    t.add_row("real-time factor", f"{stats.rtf:.4f}" if stats.seconds_audio else "-")
    t.add_row("output folder", str(out_dir))
    Console(stderr=True).print(t)
    for _, err in stats.failures:
        Console(stderr=True).print(f"[red]failed[/red] {err}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="denoiselab-enhance", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="audio files, folders (recursive) or glob patterns")
    p.add_argument("--out", required=True, help="output folder (relative paths of the inputs are kept)")
    p.add_argument("--ckpt", default=None, help="model: denoiselab-export file, denoiselab-train checkpoint or "
                                                "'default' (the shipped pretrained model; also when omitted)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    p.add_argument("--strength", type=float, default=1.0,
                   help="0 = return the input, 1 = full denoising (gain 1 - strength * mask); default 1")
    p.add_argument("--atten-limit-db", type=float, default=None,
                   help="never attenuate any time-frequency bin by more than this many dB (e.g. 12); "
                        "keeps a natural noise floor and protects speech from over-suppression")
    p.add_argument("--downmix", action="store_true", help="average channels and write mono "
                                                          "(default: denoise every channel separately)")
    p.add_argument("--accelerator", default="cpu", help="where the model computes: cpu or cuda (default cpu)")
    p.add_argument("--device", dest="old_device", default=None, help=argparse.SUPPRESS)
    p.add_argument("--batch-size", type=int, default=1, help="channels/chunks per forward pass")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--chunk-seconds", type=float, default=10.0,
                   help="processing chunk length: bounds memory; 10 s is also the fastest on CPU (cache)")
    p.add_argument("--context-seconds", type=float, default=None,
                   help="context on each side of a chunk (default: the model's receptive field, at least 1.5 s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.old_device:
        log.warning("--device is now --accelerator (--device still works but will be removed)")
        args.accelerator = args.old_device
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        return run(args)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
