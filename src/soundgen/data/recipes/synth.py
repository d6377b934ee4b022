"""The ``--quick`` corpus: a small labelled set of synthetic sounds made in a second, for tests and smoke runs.

Five categories with distinct captions (tones, sweeps, noise bursts, click trains, chords), each clip a few
seconds, about 90 seconds in all. Everything is generated from a seeded random generator, so two runs with
the same seed give identical files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundgen.audio.io import write_audio
from soundgen.data.recipes.extract import StagedClip

SYNTH_SOURCE = "soundgen-synth"
SYNTH_LICENCE = "CC0-1.0"
_NOTES = {"A": 220.0, "C": 261.63, "D": 293.66, "E": 329.63, "G": 392.0}


@dataclass(frozen=True)
class SynthClip:
    """A generated clip: mono float32 ``samples [T]`` with its caption, tags and category."""

    name: str
    samples: np.ndarray
    caption: str
    tags: list[str]
    category: str


def _envelope(n: int, sample_rate: int, fade: float = 0.01) -> np.ndarray:
    env = np.ones(n, dtype=np.float32)
    k = min(int(fade * sample_rate), n // 2)
    if k:
        ramp = np.linspace(0.0, 1.0, k, dtype=np.float32)
        env[:k], env[-k:] = ramp, ramp[::-1]
    return env


def _tone(rng: np.random.Generator, sr: int, i: int) -> SynthClip:
    freq = float(rng.choice([220, 330, 440, 550, 660, 880, 1000]))
    dur = float(rng.uniform(1.5, 2.5))
    t = np.arange(int(dur * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return SynthClip(f"tone_{i:02d}", x.astype(np.float32), f"a steady sine tone at {freq:.0f} Hz",
                     ["tone", "sine", "steady"], "tone")


def _sweep(rng: np.random.Generator, sr: int, i: int) -> SynthClip:
    up = bool(rng.integers(2))
    lo, hi = float(rng.uniform(100, 400)), float(rng.uniform(1500, 4000))
    f0, f1 = (lo, hi) if up else (hi, lo)
    dur = float(rng.uniform(1.5, 2.5))
    t = np.arange(int(dur * sr)) / sr
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * dur))
    word = "rising" if up else "falling"
    return SynthClip(f"sweep_{i:02d}", (0.5 * np.sin(phase)).astype(np.float32),
                     f"a {word} sine sweep from {f0:.0f} Hz to {f1:.0f} Hz", ["sweep", word, "chirp"], "sweep")


def _noise(rng: np.random.Generator, sr: int, i: int) -> SynthClip:
    n_bursts = int(rng.integers(2, 5))
    dur = float(rng.uniform(1.5, 2.5))
    x = np.zeros(int(dur * sr), dtype=np.float32)
    width = int(0.15 * sr)
    for start in rng.integers(0, len(x) - width, n_bursts):
        decay = np.exp(-np.arange(width) / (0.04 * sr)).astype(np.float32)
        x[start : start + width] += 0.6 * rng.standard_normal(width).astype(np.float32) * decay
    return SynthClip(f"noise_{i:02d}", np.clip(x, -1, 1), f"{n_bursts} short bursts of white noise",
                     ["noise", "burst", "hiss"], "noise")


def _clicks(rng: np.random.Generator, sr: int, i: int) -> SynthClip:
    rate = int(rng.choice([4, 6, 8, 12]))
    dur = float(rng.uniform(1.5, 2.5))
    x = np.zeros(int(dur * sr), dtype=np.float32)
    click = np.exp(-np.arange(int(0.004 * sr)) / (0.0008 * sr)).astype(np.float32) * 0.9
    for start in np.arange(0, len(x) - len(click), sr // rate):
        x[start : start + len(click)] += click
    return SynthClip(f"clicks_{i:02d}", x, f"a train of sharp clicks at {rate} per second",
                     ["click", "tick", "pulse"], "click")


def _chord(rng: np.random.Generator, sr: int, i: int) -> SynthClip:
    root_name = str(rng.choice(list(_NOTES)))
    minor = bool(rng.integers(2))
    ratios = (1.0, 2 ** (3 / 12) if minor else 2 ** (4 / 12), 2 ** (7 / 12))
    dur = float(rng.uniform(1.5, 2.5))
    t = np.arange(int(dur * sr)) / sr
    x = sum(np.sin(2 * np.pi * _NOTES[root_name] * r * t) for r in ratios) / 4.0
    x = x * np.exp(-t / dur * 1.5)
    quality = "minor" if minor else "major"
    return SynthClip(f"chord_{i:02d}", np.asarray(x, dtype=np.float32),
                     f"a {quality} chord of three sine tones on {root_name}", ["chord", quality, "harmony"], "chord")


GENERATORS: tuple[Callable[[np.random.Generator, int, int], SynthClip], ...] = (_tone, _sweep, _noise, _clicks, _chord)


def synth_clips(per_category: int = 9, sample_rate: int = 16000, seed: int = 0) -> list[SynthClip]:
    """Generate ``per_category`` clips of each of the five categories (about 2 s each).

    Returns:
        Clips with ``samples`` float32 ``[T]``, enveloped to avoid clicks at the ends (click trains excepted).
    """
    rng = np.random.default_rng(seed)
    clips = []
    for gen in GENERATORS:
        for i in range(per_category):
            c = gen(rng, sample_rate, i)
            env = _envelope(len(c.samples), sample_rate) if c.category != "click" else 1.0
            clips.append(SynthClip(c.name, (c.samples * env).astype(np.float32), c.caption, c.tags, c.category))
    return clips


def write_synth_corpus(
    staging: Path, per_category: int = 9, sample_rate: int = 16000, seed: int = 0
) -> list[StagedClip]:
    """Write the synthetic clips as WAV files under ``staging/soundgen-synth/<category>/`` and describe them."""
    staged = []
    for c in synth_clips(per_category, sample_rate, seed):
        rel = f"{SYNTH_SOURCE}/{c.category}/{c.name}.wav"
        write_audio(staging / rel, c.samples, sample_rate)
        staged.append(StagedClip(rel, c.caption, c.tags, SYNTH_LICENCE, c.category, SYNTH_SOURCE, rel))
    return staged
