"""LightningDataModules: clean+noise folders mixed on the fly, or paired noisy/clean folders."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from denoiselab.core.errors import UserError
from denoiselab.core.files import nearest_path_hint, speech_in_noise
from denoiselab.core.progress import track
from denoiselab.core.rooms import RirBank, RoomAugment
from denoiselab.core.sources import (
    AudioCache,
    Track,
    load_tracks,
    match_pairs,
    quiet_held_out,
    split_by_file,
    split_by_time,
)
from denoiselab.training.data.augment import DeviceAugment
from denoiselab.training.data.datasets import ClipMixtureDataset, EpochSampler, PairedDataset, ResumableLoader, collate
from denoiselab.training.data.device_path import DevicePath
from denoiselab.training.data.general_pool import POOLS, builtin_noise_pool
from denoiselab.training.data.mixing import Mixer

log = logging.getLogger(__name__)

#: data.num_workers value that picks the worker count from where the training step runs (see workers()).
AUTO_WORKERS = "auto"

#: finetune.generic_noise value for the procedural noise pool that ships with the package.
GENERIC_BUILTIN = "builtin"

PathLike = str | Path | Sequence[str | Path]


def uses_builtin_pool(generic_noise: PathLike | None) -> bool:
    """Whether finetune.generic_noise names the builtin procedural pool (also the default when unset)."""
    return generic_noise in (None, "", GENERIC_BUILTIN)


class _BaseDataModule(L.LightningDataModule):
    def __init__(self, sample_rate: int, clip_seconds: float, batch_size: int, num_workers: int | str,
                 seed: int, val_seed: int, cache_dir: str | None, pin_memory: bool = False):
        super().__init__()
        if int(sample_rate) <= 0:
            raise ValueError(f"data.sample_rate must be a positive integer (Hz), got {sample_rate}")
        if not float(clip_seconds) > 0:
            raise ValueError(f"data.clip_seconds must be > 0, got {clip_seconds}")
        if int(batch_size) < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        if num_workers != AUTO_WORKERS and (not str(num_workers).lstrip("-").isdigit() or int(num_workers) < 0):
            raise ValueError(f"data.num_workers must be an integer >= 0 or {AUTO_WORKERS!r}, got {num_workers!r}")
        self.sample_rate = int(sample_rate)
        self.clip_samples = int(round(float(clip_seconds) * self.sample_rate))
        if self.clip_samples < 1:
            raise ValueError(f"data.clip_seconds={clip_seconds} is shorter than one sample")
        self.batch_size = int(batch_size)
        self.num_workers: int | str = num_workers if num_workers == AUTO_WORKERS else int(num_workers)
        self.seed, self.val_seed = int(seed), int(val_seed)
        self.cache_dir, self.pin_memory = cache_dir, pin_memory
        self.train_set = self.val_set = self.test_set = None

    @property
    def cache(self) -> AudioCache:
        return AudioCache(self.cache_dir, self.sample_rate)

    def _rank(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def workers(self) -> int:
        """Loader worker processes: data.num_workers, or for 'auto' none where the training step runs on the
        CPU (its items are slices of audio in memory, and a worker's core is one the step does not get: 7 %
        more fine-tuning steps in a time budget without them on a 2-core CPU, benchmarks/results/
        loader_workers.md) and 2 on an accelerator, whose step leaves the CPU free to prepare batches."""
        if self.num_workers != AUTO_WORKERS:
            return int(self.num_workers)
        trainer = getattr(self, "trainer", None)
        on_cpu = trainer is None or trainer.strategy.root_device.type == "cpu"
        return 0 if on_cpu else 2

    def _loader(self, ds, shuffle: bool) -> DataLoader:
        rank, world = self._rank()
        sampler = EpochSampler(len(ds), self.seed, shuffle=shuffle, rank=rank, world_size=world)
        loader = ResumableLoader if shuffle else DataLoader
        workers = self.workers()
        return loader(ds, batch_size=self.batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=collate, pin_memory=self.pin_memory, drop_last=False,
                      persistent_workers=workers > 0)

    def train_dataloader(self) -> DataLoader:
        self._train_loader = self._loader(self.train_set, shuffle=True)
        return self._train_loader

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Count training batches as they reach the step (the loader's resumable position)."""
        trainer = getattr(self, "trainer", None)
        loader = getattr(self, "_train_loader", None)
        if trainer is not None and trainer.training and isinstance(loader, ResumableLoader):
            loader.consumed += 1
        return batch

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set or self.val_set, shuffle=False)


class MixtureDataModule(_BaseDataModule):
    """Clean speech and noise folders (or list files), cut into clips and mixed on the fly.

    Validation: ``val_clean``/``val_noise`` folders if given, else a by-file split of the
    training folders (``val_fraction``; a few noise takes are split by time, see ``_split``).
    Validation and test mixtures are fixed by ``val_seed``.
    """

    def __init__(
        self,
        clean: PathLike | None = None,
        noise: PathLike | None = None,
        manifest: str | Path | None = None,
        root: str | Path | None = None,
        val_clean: PathLike | None = None,
        val_noise: PathLike | None = None,
        test_clean: PathLike | None = None,
        test_noise: PathLike | None = None,
        val_fraction: float = 0.1,
        sample_rate: int = 16000,
        clip_seconds: float = 5.0,
        short: str = "pad",
        min_seconds: float = 0.5,
        mix: Mixer | dict | None = None,
        augment: DeviceAugment | dict | None = None,
        rooms: RoomAugment | dict | None = None,
        device_path: DevicePath | dict | None = None,
        mix_on_device: bool = True,
        batch_size: int = 8,
        num_workers: int | str = 0,
        max_val_items: int | None = 200,
        seed: int = 1234,
        val_seed: int = 4321,
        cache_dir: str | None = None,
        pin_memory: bool = False,
        generic_noise: PathLike | None = None,
        generic_share: float = 0.0,
        builtin_pool: str = "full",
        min_noise_seconds: float = 0.0,
    ):
        super().__init__(sample_rate, clip_seconds, batch_size, num_workers, seed, val_seed, cache_dir, pin_memory)
        if not 0.0 <= float(generic_share) < 1.0:
            raise UserError(f"finetune.generic_share must be in [0, 1), got {generic_share}")
        self.generic_noise, self.generic_share = generic_noise, float(generic_share)
        if builtin_pool not in POOLS:
            raise UserError(f"finetune.builtin_pool={builtin_pool!r}: choose one of {', '.join(POOLS)}")
        self.builtin_pool = builtin_pool
        self.min_noise_seconds = float(min_noise_seconds)
        if not uses_builtin_pool(generic_noise):
            _require_paths(generic_noise=generic_noise)
        if manifest:
            clean, noise, val_clean, val_noise = read_manifest(manifest, root)
        elif clean in (None, "", "???") or noise in (None, "", "???"):
            raise ValueError("data.clean and data.noise must name folders (or list files) of recordings, "
                             "or data.manifest a denoiselab-prepare manifest.csv")
        if short not in ("pad", "skip"):
            raise ValueError(f"data.short={short!r} is not allowed; choose pad or skip")
        if not manifest:
            _require_paths(clean=clean, noise=noise, val_clean=val_clean, val_noise=val_noise,
                           test_clean=test_clean, test_noise=test_noise)
            _refuse_speech_as_noise(clean, noise)
        self.clean, self.noise = clean, noise
        self.val_clean, self.val_noise = val_clean, val_noise
        self.test_clean, self.test_noise = test_clean, test_noise
        self.val_fraction, self.short = float(val_fraction), short
        self.min_samples = int(round(float(min_seconds) * self.sample_rate))
        self.mixer = mix if isinstance(mix, Mixer) else Mixer(**(dict(mix) if mix else {}))
        self.augment = augment if isinstance(augment, DeviceAugment) or augment is None else DeviceAugment(**augment)
        if self.augment is not None:
            self.augment.check_rate(self.sample_rate)
        self.rooms = rooms if isinstance(rooms, RoomAugment) or rooms is None else RoomAugment(**rooms)
        if self.rooms is not None and self.rooms.cache_dir is None:
            self.rooms.cache_dir = cache_dir
        self._bank: RirBank | None = None
        self.device_path = (device_path if isinstance(device_path, DevicePath) or device_path is None
                            else DevicePath(**device_path))
        self.mix_on_device = mix_on_device
        self.max_val_items = max_val_items

    def _min_len(self) -> int:
        return self.clip_samples if self.short == "skip" else max(1, self.min_samples)

    def prepare_data(self) -> None:
        """Decode everything once into the cache (rank 0 only, before the other ranks read it)."""
        if self.cache_dir:
            named = {"clean": self.clean, "noise": self.noise, "validation clean": self.val_clean,
                     "validation noise": self.val_noise, "test clean": self.test_clean, "test noise": self.test_noise}
            for kind, roots in named.items():
                if roots:
                    load_tracks(roots, self.cache, kind=kind, min_samples=1)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        cache = self.cache
        clean, vc = self._split(self.clean, self.val_clean, "clean", self._min_len(), self.seed)
        noise, vn = self._split(self.noise, self.val_noise, "noise", 1, self.seed + 1)
        # each track once: a by-file split that found no validation file validates on the training tracks
        given = {id(t): len(t) for t in noise + ([] if self.val_noise else vn)}
        seconds = sum(given.values()) / self.sample_rate  # what the user recorded (before any split)
        if seconds < self.min_noise_seconds:
            raise UserError(f"data.noise holds {seconds:.1f} s of usable noise; record at least "
                            f"{self.min_noise_seconds:g} s (a minute or more is better) of the noise to remove")
        generic = self._generic_pool([t.samples for t in clean]) if self.generic_share > 0 else []
        self.train_set = ClipMixtureDataset(clean, noise, self.clip_samples, self.mixer, self.seed,
                                            augment=self.augment, rooms=self.rooms, generic=generic,
                                            device_path=self.device_path,
                                            generic_share=self.generic_share)
        if self.rooms is not None:
            self._bank = self.rooms.bank(self.sample_rate)
        # validation mixes the general pool in at the training share: a fine-tune that forgets scores lower,
        # so the monitored-best checkpoint is one that learnt the new noise without losing the rest
        self.val_set = ClipMixtureDataset(vc, vn, self.clip_samples, self.mixer, self.val_seed,
                                          random_offsets=False, max_items=self.max_val_items, generic=generic,
                                          generic_share=self.generic_share)
        if self.test_clean and self.test_noise:
            tc = load_tracks(self.test_clean, cache, self._min_len(), "test clean")
            tn = load_tracks(self.test_noise, cache, 1, "test noise")
            self.test_set = ClipMixtureDataset(tc, tn, self.clip_samples, self.mixer, self.val_seed + 1,
                                               random_offsets=False)
        log.info("Data: %d train clips (%d clean, %d noise files), %d validation mixtures",
                 len(self.train_set), len(clean), len(noise), len(self.val_set))

    def _split(self, roots: PathLike, val_roots: PathLike | None, kind: str, min_len: int, seed: int
               ) -> tuple[list[Track], list[Track]]:
        """(train, validation) tracks: the validation folders if given, else data.val_fraction of the files.
        A handful of recordings is split by time instead, each one's last val_fraction held out: a single
        long recording of a room's noise, or (noise only) so few takes that a by-file split would hold out
        a single one, which would then never be learnt from (a fifth of a lab's noise, for five takes)."""
        cache = self.cache
        if val_roots:
            return (load_tracks(roots, cache, min_len, kind),
                    load_tracks(val_roots, cache, min_len, f"validation {kind}"))
        # split what is usable: an unreadable or too-short file is neither trained nor validated on, so it
        # must not take a validation place (a by-file split that drew only such files would leave none)
        tracks = load_tracks(roots, cache, min_len, kind)
        few = len(tracks) == 1 or (kind == "noise" and round(self.val_fraction * len(tracks)) <= 1)
        if few and self.val_fraction > 0:
            min_part = max(min_len, min(self.clip_samples // 2, self.sample_rate))
            split = split_by_time(tracks, self.val_fraction, min_part)
            if split is not None:
                whole = len(tracks) - len(split[1])
                log.info("%s: %d usable recording(s); the last %.0f %% of %s is held out for validation%s", kind,
                         len(tracks), 100 * self.val_fraction, "each" if not whole else f"{len(split[1])} of them",
                         f" ({whole} too short to split, trained on whole)" if whole else "")
                quiet = quiet_held_out(*split) if kind == "noise" else []
                if quiet:
                    log.warning("noise: the held-out end of %d of %d recording(s) is over 20 dB quieter than the "
                                "rest (e.g. %s: a silent tail?), so those validation mixtures are nearly clean and "
                                "the validation scores say little about your noise; trim the silence or give "
                                "data.val_noise=DIR", len(quiet), len(split[1]), Path(quiet[0]).name)
                return split
        train_files, val_files = split_by_file([Path(t.path) for t in tracks], self.val_fraction, seed)
        if not val_files:  # nothing to hold out (one file, or val_fraction 0): validate on the training tracks
            return tracks, tracks
        held_out = {str(f) for f in val_files}
        return ([t for t in tracks if t.path not in held_out], [t for t in tracks if t.path in held_out])

    def _generic_pool(self, speech: list[np.ndarray]) -> list[Track]:
        """Noise of other kinds mixed into a share of fine-tuning mixtures, so the model does not forget
        them: the folder finetune.generic_noise, or (builtin / unset) procedurally generated noise and
        babble of the training ``speech``."""
        if uses_builtin_pool(self.generic_noise):
            log.warning("finetune.generic_noise=builtin: procedural noise guards only partly against forgetting; "
                        "experiment=finetune's teacher and blend with the starting weights (finetune.distill, "
                        "finetune.keep_start) keep the general mixtures near the start at a cost to the targeted "
                        "gain (benchmarks/results/keep_start_builtin.md: the blend keeps 0.23-0.42 dB SI-SDR less "
                        "of it); give finetune.generic_noise=DIR, a folder of real general noise, if you have one")

            pool = builtin_noise_pool(self.sample_rate, speech=speech, pool=self.builtin_pool)
            return [Track(f"builtin:{kind}:{i}", x, kind) for i, (kind, x) in enumerate(pool)]
        return load_tracks(self.generic_noise, self.cache, 1, "generic noise")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Mix on the batch's device so workers only read audio."""
        batch = super().on_after_batch_transfer(batch, dataloader_idx)
        return self.mixer.mix(batch, self.sample_rate, self._bank) if "noisy" not in batch else batch

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if not self.mix_on_device:
            return self.mixer.mix(batch, self.sample_rate, self._bank)
        return batch


class PairedDataModule(_BaseDataModule):
    """Folders of noisy and clean files with matching relative paths (VoiceBank+DEMAND layout)."""

    def __init__(
        self,
        noisy: PathLike,
        clean: PathLike,
        val_noisy: PathLike | None = None,
        val_clean: PathLike | None = None,
        val_fraction: float = 0.1,
        sample_rate: int = 16000,
        clip_seconds: float = 5.0,
        batch_size: int = 8,
        num_workers: int | str = 0,
        seed: int = 1234,
        val_seed: int = 4321,
        cache_dir: str | None = None,
        pin_memory: bool = False,
        align: bool = False,
    ):
        super().__init__(sample_rate, clip_seconds, batch_size, num_workers, seed, val_seed, cache_dir, pin_memory)
        _require_paths(noisy=noisy, clean=clean, val_noisy=val_noisy, val_clean=val_clean)
        self.noisy, self.clean = noisy, clean
        self.val_noisy, self.val_clean = val_noisy, val_clean
        self.val_fraction = float(val_fraction)
        self.align = bool(align)

    def _pairs(self, noisy_root, clean_root, kind: str, names: set[str] | None = None) -> list[tuple[Track, Track]]:
        pairs = match_pairs(noisy_root, clean_root)
        if names is not None:
            pairs = [(n, c) for n, c in pairs if str(n) in names]
        noisy = load_tracks(noisy_root, self.cache, 1, f"{kind} noisy", files=[n for n, _ in pairs])
        clean = load_tracks(clean_root, self.cache, 1, f"{kind} clean", files=[c for _, c in pairs])
        by_noisy = {t.path: t for t in noisy}
        by_clean = {t.path: t for t in clean}
        out = [(by_noisy[str(n)], by_clean[str(c)]) for n, c in pairs
               if str(n) in by_noisy and str(c) in by_clean]
        if not out:
            raise ValueError(f"No usable noisy/clean pairs in {noisy_root} and {clean_root}")
        return self._aligned(out, kind) if self.align else self._check_offsets(out, kind)

    def _check_offsets(self, pairs: list[tuple[Track, Track]], kind: str,
                       at_most: int = 50) -> list[tuple[Track, Track]]:
        """Warn when noisy files lag their clean partners (a recording's latency): the noise target, noisy
        minus clean, is then wrong throughout. The first ``at_most`` pairs are checked: a latency is the
        set-up's, so it shows in any of them."""
        from denoiselab.evaluation.alignment import pair_offset

        lags = [(n.path, pair_offset(n.samples, c.samples, self.sample_rate)[0]) for n, c in pairs[:at_most]]
        offset = [(path, lag) for path, lag in lags if lag]
        if offset:
            path, lag = max(offset, key=lambda o: abs(o[1]))
            log.warning("%d of the first %d %s pair(s) are offset in time (e.g. %s lags its clean file by %+.1f ms): "
                        "the noise target (noisy - clean) of those pairs is wrong; data.align=true shifts each "
                        "noisy file onto its clean file", len(offset), len(lags), kind, path,
                        1000.0 * lag / self.sample_rate)
        return pairs

    def _aligned(self, pairs: list[tuple[Track, Track]], kind: str) -> list[tuple[Track, Track]]:
        """data.align: every noisy file shifted onto its clean file (GCC-PHAT per pair, as denoiselab-evaluate
        does), so noisy - clean is the noise; a pair that does not correlate is kept as it is and named."""
        from denoiselab.evaluation.alignment import pair_offset, shift

        out, moved, unrelated = [], [], []
        # one GCC-PHAT per pair: minutes for a VoiceBank-sized set
        for n, c in track(pairs, f"aligning {kind} pairs", "pairs"):
            lag, related = pair_offset(n.samples, c.samples, self.sample_rate)
            if not related:
                unrelated.append(n.path)
            elif lag:
                moved.append((n.path, lag))
                n = Track(n.path, shift(np.asarray(n.samples), lag, len(n) - lag), n.label)
            out.append((n, c))
        if moved:
            path, lag = max(moved, key=lambda o: abs(o[1]))
            log.info("data.align: %d of %d %s noisy file(s) shifted onto their clean file (largest offset %s: "
                     "%+.1f ms)", len(moved), len(pairs), kind, path, 1000.0 * lag / self.sample_rate)
        if unrelated:
            log.warning("%d %s pair(s) show no clear correlation between the noisy and the clean file (e.g. %s): "
                        "is it a recording of that file?", len(unrelated), kind, unrelated[0])
        return out

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.val_noisy and self.val_clean:
            train = self._pairs(self.noisy, self.clean, "train")
            val = self._pairs(self.val_noisy, self.val_clean, "validation")
        else:
            noisy_files = [str(n) for n, _ in match_pairs(self.noisy, self.clean)]
            tr, va = split_by_file([Path(p) for p in noisy_files], self.val_fraction, self.seed)
            train = self._pairs(self.noisy, self.clean, "train", {str(p) for p in tr})
            # without a held-out file, validation reuses the training pairs (checked or aligned already)
            val = self._pairs(self.noisy, self.clean, "validation", {str(p) for p in va}) if va else train
        self.train_set = PairedDataset(train, self.clip_samples, self.seed)
        self.val_set = PairedDataset(val, self.clip_samples, self.val_seed, random_offsets=False)


def read_manifest(manifest: str | Path, root: str | Path | None = None) -> tuple[list, list, list | None, list | None]:
    """(train clean, train noise, val clean, val noise) file lists from a denoiselab-prepare manifest.

    Relative paths resolve against ``root`` (default: the manifest's folder). When ``root`` is
    given, a path that resolves outside it is refused, so a manifest cannot point anywhere else.
    """
    import csv

    manifest = Path(manifest).expanduser()
    if not manifest.is_file():
        raise FileNotFoundError(f"data.manifest does not exist: {manifest}")
    base = Path(root).expanduser().resolve() if root else manifest.parent.resolve()
    lists: dict[tuple[str, str], list[Path]] = {}
    with open(manifest, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"kind", "path", "split"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{manifest} lacks column(s) {sorted(missing)}; expected a denoiselab-prepare manifest")
        for line, row in enumerate(reader, 2):
            p = (base / row["path"]).resolve()
            if root and not p.is_relative_to(base):
                raise ValueError(f"{manifest}:{line}: path {row['path']!r} escapes the data root {base}")
            if row["kind"] not in ("clean", "noise") or row["split"] not in ("train", "val"):
                raise ValueError(f"{manifest}:{line}: kind must be clean|noise and split train|val")
            lists.setdefault((row["kind"], row["split"]), []).append(p)
    for kind in ("clean", "noise"):
        if not lists.get((kind, "train")):
            raise UserError(f"{manifest} lists no {kind} clips for training (split=train); re-run denoiselab-prepare "
                            "on a folder with usable recordings, or give data.clean/data.noise folders")
    return (lists.get(("clean", "train"), []), lists.get(("noise", "train"), []),
            lists.get(("clean", "val")) or None, lists.get(("noise", "val")) or None)


def _require_paths(**paths: Any) -> None:
    """Fail at start-up, naming the key, when a configured data path does not exist."""
    for key, value in paths.items():
        if value in (None, "", "???"):
            continue
        for p in _roots(value):
            if not Path(str(p)).expanduser().exists():
                raise FileNotFoundError(f"data.{key}: no such file or folder: {p}{nearest_path_hint(p)}")


def _refuse_speech_as_noise(clean: PathLike, noise: PathLike) -> None:
    """data.noise naming the speech folder (or one inside it, or the other way round) would teach the model
    to remove speech: a copy-paste slip worth one line, not an hour of training."""
    if (found := speech_in_noise(_roots(clean), _roots(noise))) is not None:
        n, c = found
        raise UserError(f"data.noise ({n}) and data.clean ({c}) overlap: the speech would be mixed in as "
                        "noise and the model would learn to remove it; give the noise recordings' own folder")


def _roots(x: PathLike) -> list:
    return [x] if isinstance(x, (str, Path)) else list(x)
