"""The default corpus recipe: ``soundgen data recipe default --out DIR``.

1. check which corpus packages (DESIGN.md "Data for the bundled model") are installed, and name the one
   ``apt-get`` command that adds the missing ones (nothing is installed here);
2. extract their audio into ``DIR/staging/`` (archives, WAD lumps, WavPack), with captions, categories and
   licences in ``DIR/staging/metadata.jsonl``;
3. render music: MIDI files found in packages, then music21 scores with varied instruments and tempi, until
   the music target is reached (``--music-hours``);
4. build the dataset in ``DIR`` with :func:`soundgen.data.build.build_dataset`, and write
   ``recipe_report.json``/``.md`` beside the builder's report.

``--quick`` replaces steps 1-3 with a small synthetic corpus (:mod:`soundgen.data.recipes.synth`).
Reruns reuse what is already staged or rendered.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from soundgen.data.build import BuildReport, build_dataset
from soundgen.data.licences import allowed
from soundgen.data.recipes import jobs
from soundgen.data.recipes.config import RecipeConfig
from soundgen.data.recipes.extract import Extraction, MidiFile, PackageExtractor, StagedClip, Stager
from soundgen.data.recipes.library import write_library
from soundgen.data.recipes.packages import (
    PACKAGES,
    SOUNDFONT_PACKAGE,
    PackageSpec,
    PackageStatus,
    apt_command,
    detect_packages,
    dpkg_files,
    dpkg_installed,
)
from soundgen.data.recipes.report import RecipeReport, summarize, write_recipe_report
from soundgen.data.recipes.scores import corpus_pieces
from soundgen.data.recipes.synth import write_synth_corpus
from soundgen.errors import ConfigError, MissingDependencyError
from soundgen.utils import atomic_write, progress

log = logging.getLogger(__name__)

STAGING = "staging"
METADATA = "metadata.jsonl"
WORK = ".recipe"
MIN_SCORE_HOURS = 1.0  # rendered scores are the only source of music/<instrument> labels: always some


@dataclass
class RecipeResult:
    """What a recipe run did: the packages found, the build report, and the recipe report."""

    statuses: list[PackageStatus]
    apt_command: str | None
    build: BuildReport
    report: RecipeReport
    elapsed: float
    timings: dict[str, float] = field(default_factory=dict)


def run_recipe(
    cfg: RecipeConfig,
    *,
    is_installed: Callable[[str], bool] | None = dpkg_installed,
    list_files: Callable[[str], list[Path]] = dpkg_files,
) -> RecipeResult:
    """Run the recipe (see the module docstring); ``is_installed``/``list_files`` are injectable for tests.

    Raises:
        ConfigError: bad settings.
        MissingDependencyError: no corpus package at all is installed and no music can be rendered.
    """
    cfg.validate()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out = cfg.out.absolute()
    staging, work = out / STAGING, out / WORK
    _check_mode(work, cfg.quick)
    specs = [p for p in PACKAGES if _wanted(p, cfg)]
    skip_packages = cfg.quick or cfg.synth_only
    statuses = [] if skip_packages else detect_packages(specs, doc_root=cfg.doc_root, is_installed=is_installed)
    command = apt_command(statuses)
    if command:
        log.warning("missing corpus packages; to add them run:\n  %s", command)
    extractions: dict[str, Extraction] = {}
    rendered = jobs.RenderSummary()
    if cfg.quick:
        clips = write_synth_corpus(staging, sample_rate=cfg.sample_rate, seed=cfg.seed)
    elif cfg.synth_only:
        clips = synthesise(cfg, staging)
        timings["synth"] = time.perf_counter() - t0
    else:
        extractions = extract_packages(statuses, staging, work, cfg.limit, list_files)
        timings["extract"] = time.perf_counter() - t0
        rendered = render_music(cfg, statuses, extractions, staging, work)
        timings["render"] = time.perf_counter() - t0 - timings["extract"]
        clips = [c for e in extractions.values() for c in e.clips] + rendered.clips
        t_synth = time.perf_counter()
        clips += synthesise(cfg, staging)
        timings["synth"] = time.perf_counter() - t_synth
        if not clips:
            raise MissingDependencyError(
                "no corpus audio: none of the corpus packages is installed and nothing could be rendered; "
                f"install them with: {command}" if command else "no corpus audio found in the installed packages"
            )
    kept = [c for c in clips if allowed(c.licence, cfg.licences)]
    if len(kept) < len(clips):
        log.info("--licences %s: %d of %d clips kept", cfg.licences, len(kept), len(clips))
    clips = kept
    metadata = write_metadata(staging, clips)
    prune_staging(staging, {c.path for c in clips})
    t_build = time.perf_counter()
    build = build_dataset([staging], out, sample_rate=cfg.sample_rate, captions=metadata, workers=cfg.workers)
    timings["build"] = time.perf_counter() - t_build
    elapsed = time.perf_counter() - t0
    timings["total"] = elapsed
    report = summarize(out, cfg, statuses, command, extractions, rendered, timings)
    write_recipe_report(out, report)
    return RecipeResult(statuses, command, build, report, elapsed, timings)


def synthesise(cfg: RecipeConfig, staging: Path) -> list[StagedClip]:
    """The procedural sound-effects library and the rendered phrases, as :class:`RecipeConfig` asks."""
    clips: list[StagedClip] = []
    if cfg.sfx_minutes > 0:
        clips += write_library(staging, cfg.sfx_minutes, cfg.sample_rate, cfg.seed, workers=cfg.workers)[0]
    if cfg.phrase_minutes > 0:
        if cfg.soundfont.is_file():
            clips += write_library(staging, cfg.phrase_minutes, cfg.sample_rate, cfg.seed, workers=cfg.workers,
                                   soundfont=cfg.soundfont)[0]
        else:
            log.warning("no SoundFont at %s: musical phrases skipped (apt-get install %s)", cfg.soundfont,
                        SOUNDFONT_PACKAGE)
    return clips


def extract_packages(
    statuses: list[PackageStatus], staging: Path, work: Path, limit: int | None, list_files: Callable[[str], list[Path]]
) -> dict[str, Extraction]:
    """Extract every installed sound package into ``staging`` (MIDI files into ``work/midi``)."""
    stager = Stager(staging, work / "midi")
    out: dict[str, Extraction] = {}
    installed = [s for s in statuses if s.installed and s.spec.role != "soundfont"]
    for status in progress(installed, desc="extracting packages", unit="pkg"):
        extractor = PackageExtractor(status.spec, status.licence, stager, limit)
        out[status.spec.name] = extractor.run(list_files(status.spec.name))
        e = out[status.spec.name]
        log.info("%s: %d clips, %d MIDI files, %d duplicates, %d skipped",
                 status.spec.name, len(e.clips), len(e.midis), e.duplicates, len(e.skipped))
    return out


def render_music(
    cfg: RecipeConfig, statuses: list[PackageStatus], extractions: dict[str, Extraction], staging: Path, work: Path
) -> jobs.RenderSummary:
    """Render the MIDI files found, then music21 scores up to the music target (see :class:`RecipeConfig`)."""
    sf_status = next((s for s in statuses if s.spec.name == SOUNDFONT_PACKAGE), None)
    if not cfg.soundfont.is_file():
        log.warning("no SoundFont at %s: music rendering skipped (apt-get install %s)", cfg.soundfont,
                    SOUNDFONT_PACKAGE)
        return jobs.RenderSummary()
    settings = jobs.RenderSettings(
        staging=staging, work=work, soundfont=cfg.soundfont, sample_rate=cfg.sample_rate,
        max_seconds=cfg.max_piece_seconds,
        soundfont_licence=sf_status.licence.summary if sf_status and sf_status.installed else "MIT",
    )
    midis: list[MidiFile] = [m for e in extractions.values() for m in e.midis]
    if cfg.limit is not None:
        midis = midis[: cfg.limit]
    found = jobs.render_all(jobs.midi_jobs(midis, cfg.seed), iter(()), settings, 0.0, cfg.workers)
    package_music = sum(
        jobs.audio_seconds(staging / c.path) for e in extractions.values() for c in e.clips
        if c.category.startswith("music")
    )
    score_seconds = _score_target(cfg, package_music + sum(found.seconds.values()))
    log.info("music so far %.2f h; rendering %.2f h from music21 scores", (package_music + sum(
        found.seconds.values())) / 3600, score_seconds / 3600)
    if score_seconds <= 0:
        return found
    try:
        pieces = corpus_pieces(cfg.seed)
    except MissingDependencyError as e:
        log.warning("%s: score rendering skipped", e)
        return found
    scores = jobs.render_all([], jobs.score_jobs(pieces, cfg.variants, cfg.seed), settings, score_seconds, cfg.workers)
    found.clips += scores.clips
    found.failures += scores.failures
    for k, v in scores.seconds.items():
        found.seconds[k] = found.seconds.get(k, 0.0) + v
    found.seconds["package_music"] = package_music
    return found


def _score_target(cfg: RecipeConfig, music_seconds: float) -> float:
    if cfg.music_hours is not None:
        return cfg.music_hours * 3600
    # 5% margin: the builder trims silence, so clips come out a little shorter than the files.
    gap = cfg.music_target_hours * 3600 * 1.05 - music_seconds
    return max(gap, MIN_SCORE_HOURS * 3600)


def _wanted(spec: PackageSpec, cfg: RecipeConfig) -> bool:
    if spec.name == SOUNDFONT_PACKAGE:
        return True
    if cfg.packages is not None:
        return spec.name in cfg.packages
    return not spec.extra or cfg.extra_packages


def _check_mode(work: Path, quick: bool) -> None:
    """Refuse to turn a full corpus into a quick one (or back): rebuilding would delete the other's audio."""
    marker = work / "mode"
    mode = "quick" if quick else "full"
    if marker.exists():
        previous = marker.read_text(encoding="utf-8").strip()
        if previous != mode:
            raise ConfigError(
                f"{work.parent} holds a {previous} corpus; building a {mode} one there would delete its audio. "
                "Choose another --out (or delete the folder first)."
            )
        return
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text(mode + "\n", encoding="utf-8")


def write_metadata(staging: Path, clips: list[StagedClip]) -> Path:
    """Write the builder's metadata JSONL (one row per staged file) atomically; return its path."""
    path = staging / METADATA
    with atomic_write(path, "w") as f:
        for c in clips:
            f.write(json.dumps(c.record(), ensure_ascii=False) + "\n")
    return path


def prune_staging(staging: Path, keep: set[str]) -> int:
    """Delete staged audio no longer produced (a smaller ``--limit``, a package removed); return how many."""
    removed = 0
    for path in staging.rglob("*"):
        rel = path.relative_to(staging).as_posix()
        if path.is_file() and rel != METADATA and rel not in keep:
            path.unlink()
            removed += 1
    return removed


