"""Bounded-memory enhancement of any length, rate and channel count: arrays and files.

Long signals (overlap-save with frame-aligned chunks)
  The signal is cut into chunks whose starts are multiples of the model's alignment (STFT hop x
  the backbone's time pooling, and the resampling ratio). Each chunk is processed with
  ``context`` extra seconds on both sides, which are then discarded. For convolutional backbones
  (unet, resnet) whose receptive field fits in the context, chunked output equals whole-file
  output to float precision; a context shorter than the receptive field is warned about.
  Backbones with recurrence or attention (lstm, crn, dpcrn, dpunet, conformer) see a truncated
  history, so their chunked output is an approximation. Memory depends on the chunk size, not the
  file length.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile as sf
import torch

from denoiselab.core import audio
from denoiselab.core.denoiser import Denoiser
from denoiselab.core.errors import UserError
from denoiselab.core.model_files import load_denoiser

log = logging.getLogger(__name__)


#: Context on each side of a chunk for models without a bounded receptive field (and the minimum).
DEFAULT_CONTEXT_SECONDS = 1.5


@dataclass
class EnhanceStats:
    files: int = 0
    seconds_audio: float = 0.0
    seconds_compute: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rtf(self) -> float:
        return self.seconds_compute / self.seconds_audio if self.seconds_audio else math.nan


class Enhancer:
    """A loaded model plus the settings of how it is applied.

    strength: 0 returns the input, 1 applies the full mask (gain 1 - strength * f).
    atten_limit_db: never attenuate any bin by more than this many dB (a mask floor), e.g. 12;
    None means no limit. Both counter over-suppression; the floor keeps a little of the noise
    bed, which sounds more natural than a gated silence.
    """

    def __init__(self, denoiser: Denoiser, accelerator: str | torch.device = "cpu", chunk_seconds: float = 10.0,
                 context_seconds: float | None = None, batch_size: int = 1, strength: float = 1.0,
                 atten_limit_db: float | None = None):
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if atten_limit_db is not None and atten_limit_db < 0:
            raise ValueError(f"atten_limit_db must be >= 0 dB, got {atten_limit_db}")
        field_samples = denoiser.receptive_field_samples
        if context_seconds is None:  # enough for exact chunking where the receptive field is bounded
            context_seconds = DEFAULT_CONTEXT_SECONDS if field_samples is None else \
                max(DEFAULT_CONTEXT_SECONDS, math.ceil(10 * field_samples / denoiser.sample_rate) / 10)
        if chunk_seconds <= 0 or context_seconds < 0:
            raise ValueError("chunk_seconds must be > 0 and context_seconds >= 0")
        try:
            self.device = torch.device(accelerator)
        except RuntimeError:
            raise UserError(f"accelerator {accelerator!r} is not a torch device; use cpu, cuda or cuda:N") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise UserError("accelerator cuda was asked for, but no CUDA GPU is available; use accelerator cpu")
        self.denoiser = denoiser.to(self.device).eval()
        self.chunk_seconds, self.context_seconds = float(chunk_seconds), float(context_seconds)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.strength = float(strength)
        self.floor = 0.0 if atten_limit_db is None else float(10 ** (-atten_limit_db / 20))
        #: True when chunked output equals whole-file output (bounded receptive field within the context)
        self.exact_chunking = field_samples is not None and field_samples <= self.context_seconds * self.sample_rate
        if field_samples is not None and not self.exact_chunking:
            need = field_samples / self.sample_rate
            warnings.warn(f"context_seconds={self.context_seconds:g} is shorter than the receptive field of this "
                          f"{denoiser.net_name} ({need:.2f} s): chunked output will differ slightly from whole-file "
                          f"output; use a context of at least {math.ceil(need * 10) / 10:g} s", stacklevel=2)

    @property
    def sample_rate(self) -> int:
        return self.denoiser.sample_rate

    # ---- core: model-rate segments -> model-rate output
    @torch.no_grad()
    def _denoise_segments(self, segments: list[torch.Tensor]) -> list[torch.Tensor]:
        n_fft = self.denoiser.frontend.n_fft
        if any(g.shape[-1] <= n_fft for g in segments):  # shorter than one frame: zero-pad, then trim
            lengths = [g.shape[-1] for g in segments]
            padded = [torch.nn.functional.pad(g, (0, max(0, n_fft + 1 - g.shape[-1]))) for g in segments]
            return [y[:n] for y, n in zip(self._denoise_segments(padded), lengths)]
        out = []
        for i in range(0, len(segments), self.batch_size):
            group = segments[i:i + self.batch_size]
            lengths = {g.shape[-1] for g in group}
            if len(lengths) == 1:
                x = torch.stack(group).to(self.device)
                y = self.denoiser.enhance(x, strength=self.strength, floor=self.floor)
                out.extend(y.float().cpu().unbind(0))
            else:
                for g in group:
                    y = self.denoiser.enhance(g[None].to(self.device), strength=self.strength, floor=self.floor)
                    out.append(y[0].float().cpu())
        return out

    def _unit(self, rate: int) -> int:
        """Chunk boundaries (in samples at ``rate``) that align with the model's frame/pooling grid."""
        model_rate = self.sample_rate
        g = math.gcd(rate, model_rate)
        q = self.denoiser.alignment_samples
        return (rate // g) * (q // math.gcd(q, model_rate // g))

    def process(self, read: Callable[[int, int], np.ndarray], total: int, rate: int,
                write: Callable[[np.ndarray], None], progress: Callable[[int], None] | None = None) -> None:
        """Stream [C, n] blocks from ``read(start, stop)`` (file rate) to ``write`` with bounded memory."""
        unit = self._unit(rate)
        chunk = max(unit, int(math.ceil(self.chunk_seconds * rate / unit)) * unit)
        ctx = int(math.ceil(self.context_seconds * rate / unit)) * unit
        starts = list(range(0, total, chunk))
        for s in starts:
            e = min(s + chunk, total)
            a, b = max(0, s - ctx), min(total, e + ctx)
            block = torch.from_numpy(np.ascontiguousarray(read(a, b), dtype=np.float32))  # [C, b - a]
            x = audio.resample(block, rate, self.sample_rate)
            y = torch.stack(self._denoise_segments(list(x.unbind(0))))
            y = audio.resample(y, self.sample_rate, rate)
            n = b - a
            y = y[:, :n] if y.shape[-1] >= n else torch.nn.functional.pad(y, (0, n - y.shape[-1]))
            write(y[:, s - a:e - a].numpy())
            if progress:
                progress(e - s)

    # ---- arrays
    def enhance(self, waveform: np.ndarray | torch.Tensor, sample_rate: int, downmix: bool = False):
        """Denoise [T], [C, T] or [T, C] audio at any rate; returns the same type, dtype, layout (mono if downmix)
        and rate. The longer axis is time, so soundfile's [T, C] arrays go in as read. Integer PCM (scipy's
        wavfile, soundfile with dtype='int16') is scaled to [-1, 1) and the result returned as that integer type."""
        is_torch = isinstance(waveform, torch.Tensor)
        pcm = None  # the integer dtype to return, for integer input
        if is_torch:
            x = waveform.detach().cpu().float().numpy()
        else:
            x = np.asarray(waveform)
            if np.issubdtype(x.dtype, np.signedinteger):
                pcm = x.dtype
                x = x.astype(np.float32) / float(-np.iinfo(pcm).min)
            x = x.astype(np.float32, copy=False)
        if x.ndim not in (1, 2):
            raise ValueError(f"waveform must be [samples], [channels, samples] or [samples, channels], "
                             f"got shape {tuple(x.shape)}")
        time_first = x.ndim == 2 and x.shape[0] > x.shape[1]  # more channels than samples is never audio
        if time_first:
            x = np.ascontiguousarray(x.T)
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if not np.isfinite(x).all():
            raise ValueError("waveform contains NaN or Inf samples")
        mono_in = x.ndim == 1
        x2 = x[None] if mono_in else x
        if downmix:
            x2 = x2.mean(0, keepdims=True)
        if x2.shape[-1] == 0:
            out = x2.copy()
        else:
            blocks: list[np.ndarray] = []
            self.process(lambda a, b: x2[:, a:b], x2.shape[-1], int(sample_rate), blocks.append)
            out = np.concatenate(blocks, -1)
        if mono_in or downmix:
            out = out[0]
        elif time_first:
            out = out.T
        out = np.ascontiguousarray(out)
        if pcm is not None:
            info = np.iinfo(pcm)
            return np.clip(np.round(out * float(-info.min)), info.min, info.max).astype(pcm)
        return torch.from_numpy(out).to(waveform.dtype) if is_torch else out


def load_model(path: str | Path | None = None, accelerator: str = "cpu", **settings: Any) -> Enhancer:
    """Load a model file or checkpoint (None or ``default``: the shipped model) -> Enhancer with
    ``.enhance``. ``device=`` is the old spelling of ``accelerator=`` (still accepted, with a warning)."""
    if "device" in settings:
        warnings.warn("load_model(device=...) is now load_model(accelerator=...)", FutureWarning, stacklevel=2)
        accelerator = settings.pop("device")
    return Enhancer(load_denoiser(path), accelerator=accelerator, **settings)


def enhance_file(enhancer: Enhancer, src: Path, dst: Path, fmt: str, subtype: str | None, downmix: bool = False,
                 on_progress=None) -> float:
    """Stream src -> dst (temp name + rename). Returns seconds of audio processed."""
    info = audio.info(src)
    if info.frames <= 0:
        raise audio.AudioError(src, "empty recording (0 samples)")
    if info.sample_rate <= 0:
        raise audio.AudioError(src, f"invalid sample rate {info.sample_rate}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.denoiselab-partial")
    channels = 1 if downmix else info.channels
    written = 0
    try:
        with sf.SoundFile(str(src)) as fin, sf.SoundFile(str(tmp), "w", samplerate=info.sample_rate,
                                                         channels=channels, format=fmt, subtype=subtype) as fout:
            def read(a: int, b: int) -> np.ndarray:
                fin.seek(a)
                block = fin.read(b - a, dtype="float32", always_2d=True).T
                if block.shape[1] < b - a:  # header promised more samples than the file holds
                    block = np.pad(block, ((0, 0), (0, b - a - block.shape[1])))
                if not np.isfinite(block).all():
                    raise audio.AudioError(src, "contains NaN or Inf samples")
                return block.mean(0, keepdims=True) if downmix else block

            def write(block: np.ndarray) -> None:
                nonlocal written
                fout.write(np.clip(block.T, -1.0, 1.0) if fout.subtype.startswith("PCM") else block.T)
                written += block.shape[1]

            enhancer.process(read, info.frames, info.sample_rate, write, on_progress)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written / info.sample_rate
