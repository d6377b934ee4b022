"""Build a dataset from folders, archives and files: ``soundgen data build SRC... --out DIR``.

scan -> decode -> mono -> resample -> trim silence -> slice -> dedupe -> split -> write. The per-file work runs
in a pool of worker processes (:mod:`soundgen.data.build_worker`); this module schedules it, keeps the cache
that makes a rebuild redo nothing, assigns captions and splits, and writes manifests and the report. The
on-disk form is described in ``docs/data.md`` and :mod:`soundgen.data.manifest`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from soundgen.audio.archive import member_path
from soundgen.data.build_lock import dataset_lock
from soundgen.data.build_pool import execute_pool, start_method
from soundgen.data.build_worker import (
    STABLE_REASONS,
    DataSourceError,
    ItemResult,
    ProcessSettings,
    SourceItem,
    clip_location,
    process_item,
    read_sidecar,
    scan_sources,
)
from soundgen.data.captions import (
    CaptionInfo,
    MetadataError,
    MetadataTable,
    caption_from_path,
    load_metadata,
    resolve_info,
    sidecar_from_bytes,
)
from soundgen.data.manifest import SPLITS, Clip, write_manifest
from soundgen.data.report import SkippedFile, build_summary, write_reports
from soundgen.errors import AudioReadError, ConfigError
from soundgen.utils import atomic_write, progress

log = logging.getLogger(__name__)

CACHE_FILE = ".cache/index.jsonl"

__all__ = ["BuildConfig", "BuildReport", "DataSourceError", "build_dataset", "split_of"]


@dataclass(frozen=True)
class BuildConfig:
    """Settings of a dataset build.

    Attributes:
        sample_rate: output rate in Hz.
        min_duration: clips shorter than this (seconds, after trimming silence) are skipped.
        max_duration: longer audio is sliced into equal segments no longer than this (seconds).
        max_file_duration: files longer than this (seconds) are skipped (they would be decoded whole).
        silence_threshold_db: frames quieter than this RMS (dBFS) count as silence when trimming.
        trim: cut leading and trailing silence.
        split_fractions: train, valid, test shares (by source file).
        workers: worker processes (1 runs in this process).
    """

    sample_rate: int = 16000
    min_duration: float = 0.05
    max_duration: float = 30.0
    max_file_duration: float = 1200.0
    silence_threshold_db: float = -50.0
    trim: bool = True
    split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)
    workers: int = 2

    @classmethod
    def tiny(cls) -> BuildConfig:
        """Small settings for tests: short segments, one process."""
        return cls(min_duration=0.05, max_duration=2.0, max_file_duration=60.0, workers=1)

    def __post_init__(self) -> None:
        if not 1000 <= self.sample_rate <= 384000:
            raise ConfigError(f"sample rate {self.sample_rate} Hz is out of range (1000..384000)")
        numbers = {"min_duration": self.min_duration, "max_duration": self.max_duration,
                   "max_file_duration": self.max_file_duration, "silence_threshold_db": self.silence_threshold_db}
        for name, value in numbers.items():  # NaN passes every comparison below, so it is refused first
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value}")
        if self.max_file_duration <= 0:
            raise ConfigError(f"max_file_duration must be positive, got {self.max_file_duration:g} s")
        if self.silence_threshold_db > 0:
            raise ConfigError(f"silence_threshold_db is in dBFS, so at most 0, got {self.silence_threshold_db:g}")
        if self.min_duration < 0 or self.max_duration <= 0 or self.min_duration > self.max_duration:
            raise ConfigError(
                f"need 0 <= min_duration <= max_duration and max_duration > 0 "
                f"(got {self.min_duration:g} and {self.max_duration:g} s)"
            )
        fr = self.split_fractions
        if len(fr) != 3 or not all(math.isfinite(f) and f >= 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
            raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {fr}")
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")

    def process_settings(self) -> ProcessSettings:
        return ProcessSettings(
            self.sample_rate, self.min_duration, self.max_duration, self.max_file_duration,
            self.silence_threshold_db, self.trim,
        )


@dataclass
class BuildReport:
    """The outcome of :func:`build_dataset`.

    Attributes:
        out: the dataset folder.
        files: audio files found in the sources.
        clips: clips per split.
        hours: hours of audio per split.
        skipped: every skipped file with its reason.
        duplicates: clips dropped because the same audio was already in the dataset.
        processed: files decoded in this run (the rest came from the cache).
        cached: files whose earlier result was reused.
        audio_seconds: seconds of source audio decoded in this run.
        elapsed: wall seconds of the build.
        report_json: path of ``report.json``.
    """

    out: Path
    files: int = 0
    clips: dict[str, int] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)
    skipped: list[SkippedFile] = field(default_factory=list)
    duplicates: int = 0
    processed: int = 0
    cached: int = 0
    audio_seconds: float = 0.0
    elapsed: float = 0.0
    report_json: Path | None = None

    @property
    def total_clips(self) -> int:
        return sum(self.clips.values())


def split_of(key: str, fractions: Sequence[float]) -> str:
    """The split of a source file: a hash of ``key`` mapped to [0, 1) and cut at the cumulative fractions."""
    u = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:15], 16) / 16**15
    edge = 0.0
    for name, share in zip(SPLITS, fractions, strict=True):
        edge += share
        if u < edge:
            return name
    return next(n for n, s in zip(reversed(SPLITS), reversed(list(fractions)), strict=True) if s > 0)


def build_dataset(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    sample_rate: int = 16000,
    captions: str | Path | None = None,
    workers: int = 2,
    split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05),
    min_duration: float = 0.05,
    max_duration: float = 30.0,
    max_file_duration: float = 1200.0,
    silence_threshold_db: float = -50.0,
    trim: bool = True,
    config: BuildConfig | None = None,
) -> BuildReport:
    """Build (or update) a dataset folder from audio sources.

    Running it again on the same sources redoes nothing: per-file results are cached in ``out/.cache`` under a
    key of the file's path, size and mtime (member CRC for archive members) and the audio settings. Captions,
    splits, manifests and the report are recomputed every run (cheap), so an edited captions file takes effect.

    Args:
        sources: folders (recursive), .zip/.pk3/.wz archives, single audio files.
        out: the dataset folder (created).
        sample_rate, min_duration, max_duration, max_file_duration, silence_threshold_db, trim, workers,
            split_fractions: see :class:`BuildConfig` (ignored when ``config`` is given).
        captions: a CSV or JSONL metadata file (``path``, ``caption``, ``tags``, ``licence``, ``category``,
            ``source``); its fields win over sidecars and path-derived captions.
        config: all settings at once.

    Returns:
        A :class:`BuildReport`; ``out`` holds ``audio/``, ``{train,valid,test}/manifest.jsonl``, ``report.json``
        and ``report.md``.

    Raises:
        DataSourceError: no sources, or a missing or unusable source.
        ConfigError: invalid settings (sample rate, durations, split fractions, workers).
        MetadataError: a malformed captions file.
    """
    cfg = config or BuildConfig(
        sample_rate, min_duration, max_duration, max_file_duration, silence_threshold_db, trim,
        tuple(split_fractions), workers,  # type: ignore[arg-type]
    )
    if not sources:
        raise DataSourceError("no sources given: pass at least one folder, archive or audio file")
    t0 = time.perf_counter()
    out_dir = Path(out).absolute()
    table = load_metadata(captions) if captions is not None else None
    items, broken = scan_sources([Path(s) for s in sources], exclude=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with dataset_lock(out_dir):
        results, processed = _run_items(items, cfg.process_settings(), out_dir, cfg.workers)
        resolver = CaptionResolver(table)
        infos = {item.source_file: resolver.resolve(item) for item in items}
        clips, duplicates = _assign(items, results, infos, cfg)
        originals = {k: v.source_file or k for k, v in infos.items()}
        skipped = [
            SkippedFile(originals.get(r.source_file, r.source_file), r.reason, r.detail)
            for r in broken + [results[i.source_file] for i in items]
            if r.status == "skipped"
        ]
        for split in SPLITS:
            write_manifest(out_dir, split, [c for c in clips if c.split == split])
        _collect_garbage(out_dir, {c.id for c in clips})
        summary = build_summary(clips, skipped, duplicates, _settings_dict(cfg, sources, captions), len(items))
        report_json = write_reports(out_dir, summary)
    report = BuildReport(
        out=out_dir, files=len(items), skipped=skipped, duplicates=len(duplicates), processed=len(processed),
        cached=len(items) - len(processed), audio_seconds=sum(r.input_duration for r in processed),
        elapsed=time.perf_counter() - t0, report_json=report_json,
    )
    for split in SPLITS:
        report.clips[split] = sum(1 for c in clips if c.split == split)
        report.hours[split] = sum(c.duration for c in clips if c.split == split) / 3600
    failed = [s for s in skipped if s.reason == "write_failed"]
    if failed:  # a dataset missing clips for lack of disk or permission must not look like a finished build
        raise DataSourceError(
            f"{len(failed)} of {len(items)} files could not be written into {out_dir} ({failed[0].detail}); free "
            "space or fix permissions and run the build again (it redoes only those files)"
        )
    log.info(
        "dataset %s: %d clips from %d files (%d skipped, %d duplicates; %d decoded, %d cached) in %.1f s",
        out_dir, report.total_clips, len(items), len(skipped), len(duplicates), report.processed,
        report.cached, report.elapsed,
    )
    return report


def _settings_dict(cfg: BuildConfig, sources: Sequence[str | Path], captions: str | Path | None) -> dict[str, object]:
    d: dict[str, object] = dict(cfg.__dict__)
    d["split_fractions"] = list(cfg.split_fractions)
    d["sources"] = [str(Path(s).absolute()) for s in sources]
    d["captions"] = str(Path(captions).absolute()) if captions is not None else None
    return d


# ------------------------------------------------------------------------------------------------- cache


def _load_cache(out_dir: Path) -> dict[str, ItemResult]:
    path = out_dir / CACHE_FILE
    cache: dict[str, ItemResult] = {}
    if not path.is_file():
        return cache
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                r = ItemResult.from_dict(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a line cut short by an interrupted build: that file is simply redone
            cache[r.key] = r
    return cache


def _reusable(r: ItemResult, out_dir: Path) -> bool:
    if r.status == "skipped":
        return r.reason in STABLE_REASONS
    return all((out_dir / clip_location(s.id)).is_file() for s in r.segments)


def _run_items(
    items: list[SourceItem], settings: ProcessSettings, out_dir: Path, workers: int
) -> tuple[dict[str, ItemResult], list[ItemResult]]:
    """Results for every item (by source_file), from the cache or by processing; also the processed ones."""
    cache = _load_cache(out_dir)
    results: dict[str, ItemResult] = {}
    todo: list[SourceItem] = []
    for item in items:
        hit = cache.get(item.cache_key(settings))
        if hit is not None and _reusable(hit, out_dir):
            results[item.source_file] = hit
        else:
            todo.append(item)
    processed: list[ItemResult] = []
    journal = out_dir / CACHE_FILE
    journal.parent.mkdir(parents=True, exist_ok=True)
    context = start_method()  # chosen before the progress bar starts its (harmless) monitor thread
    bar = progress(total=len(todo), desc="building", unit="file")
    with open(journal, "a", encoding="utf-8") as log_file, bar:
        for r in _execute(todo, settings, out_dir, workers, context):
            results[r.source_file] = r
            processed.append(r)
            log_file.write(json.dumps(r.to_dict()) + "\n")
            log_file.flush()
            bar.update(1)
    # Compact the journal to exactly this build's entries.
    with atomic_write(journal, "w") as f:
        for item in items:
            f.write(json.dumps(results[item.source_file].to_dict()) + "\n")
    return results, processed


def _execute(
    items: list[SourceItem], settings: ProcessSettings, out_dir: Path, workers: int, context: str
) -> Iterator[ItemResult]:
    if workers <= 1 or len(items) <= 1:
        for item in items:
            yield process_item(item, settings, str(out_dir))
        return
    yield from execute_pool(items, settings, out_dir, workers, context=context)


# -------------------------------------------------------------------------------------- captions, splits


class CaptionResolver:
    """Caption, tags, licence, category and source of a file: metadata row > sidecar > path words."""

    def __init__(self, table: MetadataTable | None) -> None:
        self.table = table

    def resolve(self, item: SourceItem) -> CaptionInfo:
        row = None
        if self.table is not None:
            row = self.table.lookup(item.keys)
        return resolve_info(caption_from_path(item.relative), self._sidecar(item), row, item.source)

    def _sidecar(self, item: SourceItem) -> CaptionInfo | None:
        if item.sidecar is None:
            return None
        try:
            return sidecar_from_bytes(read_sidecar(item), member_path(item.path, item.sidecar))
        except (OSError, KeyError, zipfile.BadZipFile, MetadataError, AudioReadError) as e:
            log.warning("ignoring the sidecar of %s: %s", item.source_file, e)
            return None



def _assign(
    items: list[SourceItem], results: dict[str, ItemResult], infos: dict[str, CaptionInfo], cfg: BuildConfig
) -> tuple[list[Clip], list[dict[str, str]]]:
    """Clips of every processed file with captions and splits; identical audio is kept once (first file wins)."""
    clips: list[Clip] = []
    seen: dict[str, str] = {}
    duplicates: list[dict[str, str]] = []
    for item in items:  # sorted by source_file, so "first" is deterministic
        r, info = results[item.source_file], infos[item.source_file]
        if r.status != "ok":
            continue
        split = split_of(f"{item.source}/{item.relative}", cfg.split_fractions)
        source_file = info.source_file or item.source_file
        for seg in r.segments:
            if seg.id in seen:
                duplicates.append({"source_file": source_file, "id": seg.id, "duplicate_of": seen[seg.id]})
                continue
            seen[seg.id] = source_file
            clips.append(
                Clip(
                    id=seg.id, location=clip_location(seg.id), duration=seg.duration,
                    sample_rate=cfg.sample_rate, caption=info.caption or "", tags=list(info.tags or []),
                    category=info.category or "other", source=info.source or item.source,
                    source_file=source_file, licence=info.licence or "unknown", split=split,
                    captions=list(info.captions or []),
                )
            )
    return clips, duplicates


def _collect_garbage(out_dir: Path, keep: set[str]) -> None:
    """Delete clip WAVs no manifest refers to any more (sources removed, settings changed)."""
    audio = out_dir / "audio"
    if not audio.is_dir():
        return
    for wav in audio.glob("??/*.wav"):
        if wav.stem not in keep and len(wav.stem) == 20 and wav.parent.name == wav.stem[:2]:
            wav.unlink(missing_ok=True)
