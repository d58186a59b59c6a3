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
import json
import logging
import sys
import time
from pathlib import Path

import soundfile as sf

from denoiselab import __version__
from denoiselab.cli.errors import run_cli
from denoiselab.core import audio
from denoiselab.core.enhancer import Enhancer, EnhanceStats, enhance_file
from denoiselab.core.errors import UserError
from denoiselab.core.model_files import load_denoiser
from denoiselab.core.progress import Progress

log = logging.getLogger("denoiselab.enhance")

#: Writable by libsndfile; other inputs are written as FLAC.
WRITABLE = {"WAV", "FLAC", "OGG", "AIFF", "AU", "W64"}


def collect_inputs(specs: list[str], out_dir: Path | None = None) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(input file, relative output path) pairs, and messages for inputs that gave nothing. Files under
    ``out_dir`` are not inputs: `enhance recordings/ --out recordings/cleaned` run twice must not denoise
    its own outputs again."""
    pairs: list[tuple[Path, Path]] = []
    problems: list[str] = []
    outputs = out_dir.expanduser().resolve() if out_dir is not None else None

    def ours(f: Path) -> bool:
        return outputs is not None and f.resolve().is_relative_to(outputs)

    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            found = [f for f in audio.find_audio(p) if not ours(f)]
            if not found:
                problems.append(f"{p}: no audio files found in this folder "
                                f"(looked for {', '.join(audio.AUDIO_EXTENSIONS)})")
            pairs += [(f, f.relative_to(p)) for f in found]
        elif p.is_file():
            pairs.append((p, Path(p.name)))
        elif glob.has_magic(spec):
            base = Path(_glob_base(spec))
            found = sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file() and not ours(Path(f)))
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


#: What an output folder records about how its files were made.
MANIFEST = "denoiselab-enhance.json"


def model_record(path: str | None, denoiser, args: argparse.Namespace) -> dict:
    """The model (file, content hash, backbone) and the settings that shape the output."""
    from denoiselab.core.files import sha1_of
    from denoiselab.core.model_files import resolve_model_path

    file = resolve_model_path(path)
    return {"model": str(file), "model_sha1": sha1_of(file), "net": denoiser.net_name,
            "settings": {"strength": args.strength, "atten_limit_db": args.atten_limit_db, "downmix": args.downmix}}


def read_manifest(out_dir: Path) -> dict:
    try:
        return json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def check_not_mixing(out_dir: Path, record: dict, args: argparse.Namespace) -> None:
    """Refuse to put a second model's (or second setting's) outputs into a folder made with another,
    unless --overwrite (the listed inputs are redone) or --allow-mixed."""
    old = read_manifest(out_dir)
    if not old or args.overwrite or args.allow_mixed:
        return
    made_by = {(f["model_sha1"], json.dumps(f["settings"], sort_keys=True)) for f in old.get("files", {}).values()}
    mine = (record["model_sha1"], json.dumps(record["settings"], sort_keys=True))
    if made_by and made_by != {mine}:
        other = next(iter(old["files"].values()))
        raise UserError(f"{out_dir} holds outputs made with another model or settings ({other['model']}, "
                        f"{other['settings']}); choose another --out, or pass --overwrite to redo these files "
                        "with this model, or --allow-mixed to keep both")


def write_manifest(out_dir: Path, made: dict[str, dict]) -> None:
    manifest = read_manifest(out_dir)
    manifest.setdefault("files", {}).update(made)
    manifest["denoiselab"] = __version__
    tmp = out_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    tmp.replace(out_dir / MANIFEST)


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out).expanduser()
    if out_dir.is_file():
        raise UserError(f"--out {out_dir} is a file; give a folder (outputs keep the inputs' names)")
    for given in (Path(spec).expanduser() for spec in args.inputs):
        if given.is_dir() and given.resolve() == out_dir.resolve():
            raise UserError(f"--out {out_dir} is the input folder: the outputs would replace the recordings; "
                            f"choose another --out (e.g. {out_dir / 'denoised'})")
    pairs, problems = collect_inputs(args.inputs, out_dir)
    for msg in problems:
        log.error("%s", msg)
    inputs_resolved = {p.resolve() for p, _ in pairs}
    denoiser = load_denoiser(args.ckpt)
    enhancer = Enhancer(denoiser, accelerator=args.accelerator, chunk_seconds=args.chunk_seconds,
                        context_seconds=args.context_seconds, batch_size=args.batch_size,
                        strength=args.strength, atten_limit_db=args.atten_limit_db)
    record = model_record(args.ckpt, denoiser, args)
    check_not_mixing(out_dir, record, args)
    stats = EnhanceStats()
    skipped = 0
    made: dict[str, dict] = {}
    infos = {}
    for src, _ in pairs:
        try:
            infos[src] = audio.info(src)
        except audio.AudioError:
            infos[src] = None
    total = sum(i.frames / i.sample_rate for i in infos.values() if i is not None and i.sample_rate > 0)
    with Progress(int(round(total)), "enhancing", "s of audio", enabled=not args.quiet) as bar:
        for src, rel in pairs:
            info = infos[src]
            try:
                if info is None:
                    info = audio.info(src)  # raises the reason
                dst, fmt, subtype = output_path(out_dir, rel, info)
                if dst.resolve() in inputs_resolved or dst.resolve() == src.resolve():
                    raise audio.AudioError(src, f"output {dst} would overwrite an input; choose another --out")
                if dst.exists() and not args.overwrite:
                    log.info("skip %s: %s exists (use --overwrite to replace it)", src, dst)
                    skipped += 1
                    bar.advance(info.frames / info.sample_rate)
                    continue
                t0 = time.perf_counter()
                secs = enhance_file(enhancer, src, dst, fmt, subtype, args.downmix,
                                    lambda n, rate=info.sample_rate: bar.advance(n / rate))
                stats.seconds_compute += time.perf_counter() - t0
                stats.seconds_audio += secs
                stats.files += 1
                made[str(dst.relative_to(out_dir))] = {"source": str(src.resolve()), **record,
                                                       "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            except (audio.AudioError, sf.LibsndfileError, RuntimeError, ValueError, OSError) as err:
                stats.failures.append((str(src), str(err)))
                log.error("FAILED %s", err)
    if made:
        write_manifest(out_dir, made)
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
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("inputs", nargs="+", help="audio files, folders (recursive) or glob patterns")
    p.add_argument("--out", required=True, help="output folder (relative paths of the inputs are kept)")
    p.add_argument("--ckpt", default=None, help="model: denoiselab-export file, denoiselab-train checkpoint or "
                                                "'default' (the shipped pretrained model; also when omitted)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    p.add_argument("--allow-mixed", action="store_true",
                   help="allow outputs of another model or settings in the same --out folder "
                        f"(recorded per file in {MANIFEST})")
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


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.old_device:
        log.warning("--device is now --accelerator (--device still works but will be removed)")
        args.accelerator = args.old_device
    if args.threads is not None and args.threads < 1:  # torch's own error was a traceback
        raise UserError(f"--threads must be >= 1, got {args.threads} (leave it out for torch's choice)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return run(args)


def main(argv: list[str] | None = None) -> int:
    return run_cli("denoiselab-enhance", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
