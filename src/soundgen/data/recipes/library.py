"""The procedural sound-effects library as files: ``soundgen data recipe synth`` and part of the default corpus.

:func:`library_clip` makes clip ``index`` of a category from ``(seed, category, index)`` alone, so any clip can
be remade without the others, and workers can split the work in any order. :func:`write_library` writes clips
until each category holds its target minutes, as WAV files under ``staging/soundgen-sfx/<category>/`` with
several plain-language captions each (:func:`captions_for`), all CC0 (the project's own synthesis).
"""

from __future__ import annotations

import logging
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundgen.audio.io import write_audio
from soundgen.data.recipes import dsp
from soundgen.data.recipes.extract import StagedClip
from soundgen.data.recipes.sfx import CATEGORIES, Effect
from soundgen.errors import ConfigError
from soundgen.utils import progress

log = logging.getLogger(__name__)

LIBRARY_SOURCE = "soundgen-sfx"
LIBRARY_LICENCE = "CC0-1.0 (soundgen's own procedural synthesis)"
PHRASE_SOURCE = "soundgen-phrases"
PHRASE_LICENCE = "CC0-1.0 (soundgen's own generated phrases)"
PEAK = 10 ** (-1.0 / 20)

_TEMPLATES = ("{n}", "{n}, {x}", "the sound of {n}", "{n} {x}", "{n}", "sound effect of {n}, {x}", "{x}: {n}")


@dataclass(frozen=True)
class LibraryClip:
    """One clip of the library: mono float32 ``samples [T]`` (peak -1 dBFS), its captions (the first the
    fullest), tags and category."""

    name: str
    samples: np.ndarray
    captions: list[str]
    tags: list[str]
    category: str


def captions_for(effect: Effect, space: dsp.Space, rng: np.random.Generator, count: int = 4) -> list[str]:
    """Plain-language captions: the first names the sound with every detail and its space; the others pick a
    synonym and some of the details, in varied templates. Duplicates are dropped."""
    extras = effect.details + dsp.space_words(space)
    first = effect.nouns[0] + (", " + ", ".join(extras) if extras else "")
    out = [first]
    for _ in range(count * 3):
        if len(out) >= count:
            break
        noun = effect.nouns[int(rng.integers(len(effect.nouns)))]
        chosen = [e for e in extras if rng.random() < 0.5]
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        if not chosen:
            template = "{n}" if "{x}" in template and "the sound" not in template else template.replace(", {x}", "")
        text = template.format(n=noun, x=", ".join(chosen)).strip()
        if text not in out:
            out.append(text)
    return out


def _rng(seed: int, category: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(category.encode()), index])


def library_clip(category: str, index: int, seed: int = 0, sample_rate: int = 16000) -> LibraryClip:
    """Clip ``index`` of ``category`` (deterministic in its three arguments and the sample rate).

    Raises:
        ConfigError: an unknown category.
    """
    if category not in CATEGORIES:
        raise ConfigError(f"unknown sound-effect category {category!r}; choose from {', '.join(CATEGORIES)}")
    rng = _rng(seed, category, index)
    effect = CATEGORIES[category](rng, sample_rate)
    space = dsp.draw_space(rng) if effect.roomy else dsp.Space()
    x = dsp.apply_space(effect.samples.astype(np.float32), sample_rate, space, rng)
    x = dsp.fade(np.nan_to_num(x), sample_rate, 0.001, 0.01)
    x = dsp.normalise(x, PEAK * float(rng.uniform(0.5, 1.0)))
    tags = list(dict.fromkeys([*effect.tags, *(w for w in (space.room, space.distance) if w)]))
    name = f"{category.replace('/', '_')}_{index:05d}"
    return LibraryClip(name, x, captions_for(effect, space, rng), tags, effect.category)


def _make_and_write(args: tuple[str, str, int, int, int, str, str]) -> tuple[StagedClip, float]:
    """Make one clip (a sound effect, or a phrase when a SoundFont is named) and write it unless it is there."""
    kind, category, index, seed, sr, staging, soundfont = args
    if kind == "phrase":
        from soundgen.data.recipes.phrases import phrase

        made = phrase(category, index, Path(soundfont), seed, sr)
        name, samples, captions, tags, label = made.name, made.samples, made.captions, made.tags, made.category
        source, licence = PHRASE_SOURCE, f"{PHRASE_LICENCE}; rendered with FluidR3_GM (MIT)"
    else:
        clip = library_clip(category, index, seed, sr)
        name, samples, captions, tags, label = clip.name, clip.samples, clip.captions, clip.tags, clip.category
        source, licence = LIBRARY_SOURCE, LIBRARY_LICENCE
    rel = f"{source}/{category}/{name.replace('/', '_')}.wav"
    path = Path(staging) / rel
    if not path.is_file():
        write_audio(path, samples, sr)
    staged = StagedClip(rel, captions[0], tags, licence, label, source, f"{source}:{category}:{seed}:{index}",
                        captions=captions[1:])
    return staged, len(samples) / sr


def write_library(
    staging: Path,
    minutes_per_category: float = 30.0,
    sample_rate: int = 16000,
    seed: int = 0,
    categories: tuple[str, ...] | None = None,
    workers: int = 1,
    soundfont: Path | None = None,
) -> tuple[list[StagedClip], dict[str, float]]:
    """Write clips of each category until it holds ``minutes_per_category`` minutes of audio.

    Args:
        categories: sound-effect categories (:data:`~soundgen.data.recipes.sfx.CATEGORIES`), or with
            ``soundfont`` musical families (:data:`~soundgen.data.recipes.phrases.PHRASE_FAMILIES`); ``None``: all.
        soundfont: make musical phrases through this SoundFont instead of sound effects.

    Clips are made in batches of indices (so the result does not depend on ``workers``). A rerun makes every
    clip again (its captions come from the same draws) but keeps an existing file instead of rewriting it.

    Returns:
        The staged clips and the seconds written per category.

    Raises:
        ConfigError: an unknown category or a non-positive target.
    """
    from soundgen.data.recipes.phrases import PHRASE_FAMILIES

    if minutes_per_category <= 0:
        raise ConfigError(f"minutes per category must be > 0, got {minutes_per_category}")
    known = PHRASE_FAMILIES if soundfont is not None else tuple(CATEGORIES)
    cats = categories or known
    unknown = [c for c in cats if c not in known]
    if unknown:
        raise ConfigError(f"unknown categories {unknown}; choose from {', '.join(known)}")
    kind = "phrase" if soundfont is not None else "effect"
    target = minutes_per_category * 60
    clips: list[StagedClip] = []
    seconds = dict.fromkeys(cats, 0.0)
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    desc = "rendering musical phrases" if soundfont is not None else "synthesising sound effects"
    bar = progress(total=int(target * len(cats)), desc=desc, unit="s")
    try:
        batch = 32
        index = dict.fromkeys(cats, 0)
        while any(seconds[c] < target for c in cats):
            todo = [(kind, c, index[c] + i, seed, sample_rate, str(staging), str(soundfont or ""))
                    for c in cats if seconds[c] < target for i in range(batch)]
            for c in cats:
                if seconds[c] < target:
                    index[c] += batch
            results = pool.map(_make_and_write, todo, chunksize=8) if pool else map(_make_and_write, todo)
            for job, (staged, dur) in zip(todo, results, strict=True):
                c = job[1]
                if seconds[c] >= target:
                    continue  # the batch overshot: keep the corpus exactly as a one-clip-at-a-time run would
                clips.append(staged)
                seconds[c] += dur
                bar.update(int(dur))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    return clips, seconds
