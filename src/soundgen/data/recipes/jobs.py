"""Rendering jobs run in a process pool: MIDI files found in packages and music21 scores, to FLAC in staging.

Each job writes its FLAC files plus a small JSON description beside them in the work folder, so a rerun of
the recipe reuses finished renderings instead of rendering them again. Workers never raise for a bad score or
MIDI file: the reason comes back in :attr:`JobResult.error`.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import random
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from soundgen.audio.io import write_audio
from soundgen.data.recipes.categories import MUSIC_SOUNDTRACK
from soundgen.data.recipes.extract import MidiFile, StagedClip, safe_relative
from soundgen.data.recipes.render import FAMILIES, GM_INSTRUMENTS, Arrangement, Instrument, render_midi
from soundgen.data.recipes.scores import CorpusPiece, score_to_midi
from soundgen.data.recipes.wad import midi_tempo_bpm
from soundgen.errors import SoundgenError
from soundgen.utils import atomic_write, progress

log = logging.getLogger(__name__)

SCORE_SOURCE = "music21-corpus"
RENDER_FOLDER = "rendered"


@dataclass(frozen=True)
class RenderSettings:
    """Where and how jobs render. ``licence_*`` are carried into every rendered clip."""

    staging: Path
    work: Path
    soundfont: Path
    sample_rate: int = 16000
    max_seconds: float = 180.0
    score_licence: str = "music21 corpus scores (public domain / BSD-3-Clause)"
    soundfont_licence: str = "MIT"


@dataclass(frozen=True)
class ScoreJob:
    """Render one corpus piece once per arrangement."""

    piece: CorpusPiece
    arrangements: tuple[Arrangement, ...]
    tune: int = 0


@dataclass(frozen=True)
class MidiJob:
    """Render one MIDI file found in a package (its own instruments, a tempo factor)."""

    midi: MidiFile
    arrangement: Arrangement


@dataclass
class JobResult:
    """Clips a job staged, their durations (seconds), and the reason it failed, if it did."""

    clips: list[StagedClip] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    error: str | None = None


def tempo_word(bpm: float) -> str:
    """``"slow"`` under 76 BPM, ``"fast"`` over 132, else ``"moderate"``."""
    return "slow" if bpm < 76 else "fast" if bpm > 132 else "moderate"


def _reuse(description: Path) -> tuple[StagedClip, float] | None:
    """A finished rendering from an earlier run (its JSON description and its audio both present)."""
    try:
        d = json.loads(description.read_text())
        return StagedClip(**d["clip"]), float(d["duration"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(clip: StagedClip, samples_len: int, settings: RenderSettings, rel: str, audio: object) -> float:
    duration = samples_len / settings.sample_rate
    write_audio(settings.staging / rel, audio, settings.sample_rate)  # type: ignore[arg-type]
    with atomic_write(settings.work / (rel + ".json"), "w") as f:
        json.dump({"clip": clip.__dict__, "duration": duration}, f)
    return duration


def _existing(settings: RenderSettings, rel: str) -> tuple[StagedClip, float] | None:
    if not (settings.staging / rel).is_file():
        return None
    return _reuse(settings.work / (rel + ".json"))


def run_score_job(job: ScoreJob, settings: RenderSettings) -> JobResult:
    """Parse a score once and render it with each arrangement (worker-process entry point)."""
    result = JobResult()
    stem = safe_relative(job.piece.path.stem) + (f"_{job.tune}" if job.tune else "")
    base = f"{RENDER_FOLDER}/{SCORE_SOURCE}/{job.piece.collection}/{stem}"
    score = None
    try:
        for arr in job.arrangements:
            inst = arr.instrument
            assert inst is not None, "score jobs always name an instrument"
            rel = f"{base}_{inst.program:03d}_{round(arr.tempo_factor * 100)}.flac"
            done = _existing(settings, rel)
            if done is None:
                score = score or score_to_midi(job.piece, job.tune)
                r = render_midi(score.midi, settings.soundfont, settings.sample_rate, arr, settings.max_seconds,
                                str(job.piece.path))
                bpm = score.bpm * arr.tempo_factor
                clip = StagedClip(
                    rel, f'{score.phrase}, "{score.title}", played on {inst.name} at a {tempo_word(bpm)} tempo '
                    f"({bpm:.0f} BPM)",
                    [inst.family, *inst.name.split(), tempo_word(bpm), job.piece.collection.lower()],
                    f"{settings.score_licence}; rendered with FluidR3_GM ({settings.soundfont_licence})",
                    f"music/{inst.family}", SCORE_SOURCE, f"{job.piece.path}#{job.tune}",
                )
                done = clip, _save(clip, len(r.samples), settings, rel, r.samples)
            result.clips.append(done[0])
            result.durations.append(done[1])
    except SoundgenError as e:
        result.error = str(e)
    return result


def run_midi_job(job: MidiJob, settings: RenderSettings) -> JobResult:
    """Render one package MIDI file with its own instruments (worker-process entry point)."""
    m, arr = job.midi, job.arrangement
    rel = f"{RENDER_FOLDER}/{safe_relative(m.source, m.path.stem)}_{round(arr.tempo_factor * 100)}.flac"
    done = _existing(settings, rel)
    try:
        if done is None:
            data = m.path.read_bytes()
            r = render_midi(data, settings.soundfont, settings.sample_rate, arr, settings.max_seconds, m.source_file)
            bpm = midi_tempo_bpm(data) if m.tempo_known else None
            tempo = f", {tempo_word(bpm * arr.tempo_factor)} tempo ({bpm * arr.tempo_factor:.0f} BPM)" if bpm else ""
            clip = StagedClip(
                rel, f'"{m.name}", {m.title} game music played from MIDI on General MIDI instruments{tempo}',
                [*m.name.lower().split(), "music", "soundtrack", "midi"],
                f"{m.licence}; rendered with FluidR3_GM ({settings.soundfont_licence})",
                MUSIC_SOUNDTRACK, m.source, m.source_file,
            )
            done = clip, _save(clip, len(r.samples), settings, rel, r.samples)
        return JobResult([done[0]], [done[1]])
    except (SoundgenError, OSError) as e:
        return JobResult(error=f"{m.source_file}: {e}")


def score_jobs(pieces: list[CorpusPiece], variants: int = 2, seed: int = 0) -> Iterator[ScoreJob]:
    """Jobs over the pieces, each rendered ``variants`` times with instruments of different families
    (families taken in turn so they stay balanced) and tempo factors between 0.8 and 1.25."""
    rng = random.Random(seed)
    by_family = {f: [i for i in GM_INSTRUMENTS if i.family == f] for f in FAMILIES}
    turn = 0
    for piece in pieces:
        arrs = []
        for _ in range(variants):
            family = FAMILIES[turn % len(FAMILIES)]
            turn += 1
            inst: Instrument = rng.choice(by_family[family])
            arrs.append(Arrangement(inst, round(rng.uniform(0.8, 1.25), 2)))
        yield ScoreJob(piece, tuple(arrs))


def midi_jobs(midis: list[MidiFile], seed: int = 0) -> list[MidiJob]:
    """One job per MIDI file, at a tempo factor between 0.9 and 1.1."""
    rng = random.Random(seed)
    return [MidiJob(m, Arrangement(None, round(rng.uniform(0.9, 1.1), 2))) for m in midis]


@dataclass
class RenderSummary:
    """Everything rendered: clips, seconds per source, and failures (``path: reason``)."""

    clips: list[StagedClip] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def render_all(
    midis: list[MidiJob], scores: Iterator[ScoreJob], settings: RenderSettings, score_seconds: float, workers: int = 2
) -> RenderSummary:
    """Render every MIDI job, then score jobs until ``score_seconds`` of score music exist.

    At most ``2 * workers`` jobs are in flight, and worker processes are recycled every 40 jobs, so memory stays
    bounded (music21 caches parsed scores; each worker holds one copy of the SoundFont). Score jobs are kept in
    job order up to the first one that reaches the target, so the corpus does not depend on which worker
    finished first (renderings past that point are left out, and pruned from staging by the recipe).
    """
    ctx = multiprocessing.get_context("spawn")
    pending: dict[Future[JobResult], int] = {}
    done: dict[int, JobResult] = {}
    midi_iter = iter(midis)
    scored = 0.0
    submitted = 0
    bar = progress(total=None, unit="job", desc="rendering music")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=40) as pool:
        while True:
            while len(pending) < 2 * workers:
                job = _next_job(midi_iter, scores, scored, score_seconds, len(pending))
                if job is None:
                    break
                fn = run_midi_job if isinstance(job, MidiJob) else run_score_job
                pending[pool.submit(fn, job, settings)] = submitted  # type: ignore[arg-type]
                submitted += 1
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                result = done[pending.pop(fut)] = fut.result()
                scored += sum(s for c, s in zip(result.clips, result.durations, strict=True)
                              if c.source == SCORE_SOURCE)
                bar.update(1)
    bar.close()
    return _select(done, score_seconds)


def _next_job(
    midi_iter: Iterator[MidiJob], scores: Iterator[ScoreJob], scored: float, target: float, in_flight: int
) -> MidiJob | ScoreJob | None:
    job = next(midi_iter, None)
    if job is not None:
        return job
    # Assume ~2 minutes per in-flight job so the pool stops close to the target instead of overshooting; it
    # submits more when the jobs in flight fall short.
    if scored >= target or (in_flight and scored + 120.0 * in_flight >= target):
        return None
    return next(scores, None)


def _select(done: dict[int, JobResult], target: float) -> RenderSummary:
    """Every MIDI rendering, and score renderings in job order until ``target`` seconds."""
    summary = RenderSummary()
    scored = 0.0
    for index in sorted(done):
        result = done[index]
        is_score = any(c.source == SCORE_SOURCE for c in result.clips)
        if is_score and scored >= target:
            continue
        scored += sum(result.durations) if is_score else 0.0
        _collect(result, summary)
    return summary


def _collect(result: JobResult, summary: RenderSummary) -> None:
    if result.error:
        log.info("render skipped: %s", result.error)
        summary.failures.append(result.error)
    for clip, seconds in zip(result.clips, result.durations, strict=True):
        summary.clips.append(clip)
        summary.seconds[clip.source] = summary.seconds.get(clip.source, 0.0) + seconds


def audio_seconds(path: Path) -> float:
    """Duration of an audio file from its header (0.0 when it cannot be read)."""
    try:
        return float(sf.info(str(path)).duration)
    except (RuntimeError, sf.LibsndfileError):
        return 0.0
