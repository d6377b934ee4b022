"""Sounds unlike the corpus's synthesis, for the generalisation set (:mod:`.generalisation`).

The procedural library (:mod:`.sfx`) builds its effects from filtered noise, oscillators, sweeps and struck modes.
These use other techniques and other kinds of sound: FM synthesis, a Karplus-Strong plucked string (a physical
model), telephone signalling (DTMF keys, dial tone and an FSK modem), record-surface noise, a cricket chorus, and
textures made of speech (babble, a ring-modulated robot voice, speech through a noisy phone line). Each is a pure
function of its ``numpy`` generator and the sample rate; the speech ones also take espeak-ng's audio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from soundgen.data.recipes import dsp

Array = np.ndarray
PEAK = 10 ** (-1.0 / 20)


@dataclass(frozen=True)
class Texture:
    """A made sound: mono float32 ``samples [T]`` (peak -1 dBFS), a caption and tags."""

    samples: Array
    caption: str
    tags: list[str]


def fm_bells(rng: np.random.Generator, sr: int) -> Texture:
    """Two-operator FM bells (inharmonic ratio, decaying index), struck in a short random pattern."""
    out = np.zeros(dsp.seconds(sr, 4.0), dtype=np.float32)
    ratio = float(rng.choice([1.4, 2.76, 3.5]))
    for i in range(int(rng.integers(4, 8))):
        f = float(rng.choice([392.0, 440.0, 523.3, 587.3, 659.3, 784.0])) * float(rng.choice([0.5, 1.0]))
        n = dsp.seconds(sr, 2.5)
        t = dsp.time_axis(sr, n).astype(np.float64)
        index = 6.0 * np.exp(-t / 0.4)
        bell = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * f * ratio * t)) * np.exp(-t / 0.9)
        dsp.place(out, bell.astype(np.float32), dsp.seconds(sr, i * float(rng.uniform(0.3, 0.6))),
                  float(rng.uniform(0.4, 1.0)))
    return Texture(out, f"FM synthesis bells, a 1:{ratio:g} carrier to modulator ratio",
                   ["fm synthesis", "bells", "electronic"])


def _pluck(rng: np.random.Generator, sr: int, freq: float, seconds: float, damping: float) -> Array:
    """Karplus-Strong: a noise burst recirculated through a delay line of one period with a two-tap average."""
    period = max(2, int(round(sr / freq)))
    n = dsp.seconds(sr, seconds)
    y = np.zeros(n + period + 1, dtype=np.float64)
    y[:period] = rng.uniform(-1, 1, period)
    # y[t] = damping * (y[t - P] + y[t - P + 1]) / 2, in blocks of P - 1 samples: each reads only earlier blocks
    for start in range(period, len(y) - 1, period - 1):
        end = min(start + period - 1, len(y) - 1)
        y[start:end] = damping * 0.5 * (y[start - period : end - period] + y[start - period + 1 : end - period + 1])
    return y[:n].astype(np.float32)


def plucked_strings(rng: np.random.Generator, sr: int) -> Texture:
    """An arpeggio on a Karplus-Strong plucked string."""
    root = float(rng.choice([110.0, 146.8, 196.0]))
    steps = [0, 4, 7, 12, 7, 4, 0, 7] if rng.random() < 0.5 else [0, 3, 7, 10, 12, 10, 7, 3]
    out = np.zeros(dsp.seconds(sr, 4.0), dtype=np.float32)
    gap = float(rng.uniform(0.25, 0.45))
    damping = float(rng.uniform(0.990, 0.998))
    for i, s in enumerate(steps):
        dsp.place(out, _pluck(rng, sr, root * 2 ** (s / 12), 1.5, damping), dsp.seconds(sr, i * gap), 0.6)
    return Texture(out, "a plucked string arpeggio from a physical model (Karplus-Strong)",
                   ["plucked string", "physical model", "arpeggio"])


_DTMF_LOW, _DTMF_HIGH = (697.0, 770.0, 852.0, 941.0), (1209.0, 1336.0, 1477.0)


def telephone(rng: np.random.Generator, sr: int) -> Texture:
    """A dial tone, seven DTMF key presses, then an FSK modem warble (Bell 202: 1200 and 2200 Hz)."""
    parts = [dsp.osc(sr, 350.0, dsp.seconds(sr, 0.8)) + dsp.osc(sr, 440.0, dsp.seconds(sr, 0.8))]
    for _ in range(7):
        lo, hi = _DTMF_LOW[int(rng.integers(4))], _DTMF_HIGH[int(rng.integers(3))]
        n = dsp.seconds(sr, float(rng.uniform(0.08, 0.15)))
        parts += [dsp.osc(sr, lo, n) + dsp.osc(sr, hi, n), np.zeros(dsp.seconds(sr, 0.08), dtype=np.float32)]
    bits = rng.integers(0, 2, 1200)
    baud = dsp.seconds(sr, 1 / 1200)
    freq = np.repeat(np.where(bits == 1, 1200.0, 2200.0), max(1, baud))
    parts.append(dsp.osc(sr, freq, len(freq)) * 0.8)
    x = dsp.filt(np.concatenate(parts).astype(np.float32), sr, "bandpass", (300.0, 3400.0), order=4)
    return Texture(x, "telephone signalling: a dial tone, keypad tones and a modem", ["telephone", "dtmf", "modem"])


def vinyl(rng: np.random.Generator, sr: int) -> Texture:
    """Record-surface noise: sparse crackle impulses, hiss and a once-per-turn thump at 33 1/3 rpm."""
    n = dsp.seconds(sr, 4.0)
    crackle = np.zeros(n, dtype=np.float32)
    clicks = rng.integers(0, n, int(rng.integers(60, 160)))
    crackle[clicks] = rng.uniform(-1, 1, len(clicks)) * rng.pareto(2.0, len(clicks)).clip(0, 6)
    crackle = dsp.filt(crackle, sr, "highpass", 1500.0)
    hiss = dsp.filt(dsp.white(rng, n), sr, "bandpass", (2000.0, 7000.0)) * 0.03
    thump = np.zeros(n, dtype=np.float32)
    for t in np.arange(0.2, 4.0, 60 / (100 / 3)):
        dsp.place(thump, dsp.osc(sr, 60.0, dsp.seconds(sr, 0.05)) * dsp.decay(sr, dsp.seconds(sr, 0.05), 0.015),
                  dsp.seconds(sr, float(t)), 0.3)
    return Texture(crackle + hiss + thump, "vinyl record crackle and surface noise", ["vinyl", "crackle", "noise"])


def crickets(rng: np.random.Generator, sr: int) -> Texture:
    """A chorus of crickets: each a carrier of 3.5-5 kHz pulsed in chirps of 3-5 pulses at its own rate."""
    n = dsp.seconds(sr, 4.0)
    out = np.zeros(n, dtype=np.float32)
    for _ in range(int(rng.integers(3, 7))):
        carrier = dsp.osc(sr, float(rng.uniform(3500, 5000)), n)
        env = np.zeros(n, dtype=np.float32)
        chirp_every, pulses = float(rng.uniform(0.4, 0.9)), int(rng.integers(3, 6))
        pulse = np.hanning(dsp.seconds(sr, 0.012)).astype(np.float32)
        for start in np.arange(float(rng.uniform(0, 0.5)), 4.0, chirp_every):
            for p in range(pulses):
                dsp.place(env, pulse, dsp.seconds(sr, float(start) + p * 0.02))
        out += carrier * env * float(rng.uniform(0.2, 1.0))
    out += dsp.filt(dsp.pink(rng, n), sr, "lowpass", 800.0) * 0.02  # a quiet night ambience under it
    return Texture(out, "a chorus of crickets chirping at night", ["crickets", "insects", "night"])


def babble(voices: list[Array], sr: int, rng: np.random.Generator) -> Texture:
    """Several voices talking at once (``voices``: espeak-ng clips ``[T]``), in a small reverberant room."""
    n = max(len(v) for v in voices)
    out = np.zeros(n, dtype=np.float32)
    for v in voices:
        dsp.place(out, dsp.normalise(v), int(rng.integers(0, max(1, n - len(v) + 1))), float(rng.uniform(0.5, 1.0)))
    room = dsp.Space("in a small room", 0.5, 0.3)
    return Texture(dsp.apply_space(out, sr, room, rng), f"crowd babble: {len(voices)} voices talking at once",
                   ["babble", "crowd", "voices", "speech"])


def robot_voice(voice: Array, sr: int, rng: np.random.Generator) -> Texture:
    """A voice ring-modulated by a 30-90 Hz sine (the classic robot effect)."""
    f = float(rng.uniform(30, 90))
    return Texture(voice * dsp.osc(sr, f, len(voice)), f"a robot voice: speech ring-modulated at {f:.0f} Hz",
                   ["robot voice", "ring modulation", "speech"])


def phone_line(voice: Array, sr: int, rng: np.random.Generator) -> Texture:
    """A voice through a noisy telephone line: 300-3400 Hz, mild clipping, line hiss and 50 Hz hum."""
    x = dsp.filt(dsp.normalise(voice), sr, "bandpass", (300.0, 3400.0), order=4)
    x = np.tanh(2.5 * x) / np.tanh(2.5)
    hiss = dsp.white(rng, len(x)) * float(rng.uniform(0.01, 0.04))
    hum = dsp.osc(sr, 50.0, len(x)) * 0.02
    return Texture((x + hiss + hum).astype(np.float32), "speech over a noisy telephone line",
                   ["telephone", "speech", "noise"])


SYNTH_TEXTURES: dict[str, Callable[[np.random.Generator, int], Texture]] = {
    "fm_bells": fm_bells,
    "plucked_string": plucked_strings,
    "telephone": telephone,
    "vinyl": vinyl,
    "crickets": crickets,
}
SPEECH_TEXTURES = ("babble", "robot_voice", "phone_line")


def finish(x: Array, sr: int) -> Array:
    """Fades at both ends and a -1 dBFS peak."""
    return dsp.normalise(dsp.fade(np.nan_to_num(x).astype(np.float32), sr, 0.005, 0.05), PEAK)
