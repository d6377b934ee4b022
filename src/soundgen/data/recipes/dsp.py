"""Signal-processing primitives of the procedural sound-effects library (:mod:`soundgen.data.recipes.sfx`).

Everything works on mono float32 arrays ``[T]`` at one sample rate and draws randomness only from the
``numpy.random.Generator`` it is given, so a sound is a pure function of its seed. Filters are scipy's
second-order sections; reverb is a convolution with a synthetic, exponentially decaying noise response.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

Array = np.ndarray


def seconds(sr: int, dur: float) -> int:
    """Samples in ``dur`` seconds (at least 1)."""
    return max(1, int(round(dur * sr)))


def time_axis(sr: int, n: int) -> Array:
    """``[n]`` times in seconds."""
    return (np.arange(n, dtype=np.float64) / sr).astype(np.float32)


def white(rng: np.random.Generator, n: int) -> Array:
    return rng.standard_normal(n).astype(np.float32)


def brown(rng: np.random.Generator, n: int, sr: int = 16000) -> Array:
    """Brownian (1/f^2) noise, high-passed at 20 Hz so it does not drift, unit peak."""
    x = np.cumsum(rng.standard_normal(n)).astype(np.float64)
    x = signal.sosfilt(signal.butter(1, 20, "highpass", fs=sr, output="sos"), x)
    return normalise(x.astype(np.float32))


def pink(rng: np.random.Generator, n: int) -> Array:
    """Pink-ish (1/f) noise from a three-pole filter of white noise (Paul Kellet's economy coefficients)."""
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1, -2.494956002, 2.017265875, -0.522189400]
    return normalise(signal.lfilter(b, a, rng.standard_normal(n)).astype(np.float32))


def filt(x: Array, sr: int, kind: str, freq: float | tuple[float, float], order: int = 2) -> Array:
    """Butterworth filter: ``kind`` is lowpass, highpass or bandpass (``freq`` a pair); cut-offs are clamped
    below Nyquist so any parameter draw stays valid."""
    nyq = sr / 2 * 0.98
    if isinstance(freq, tuple):
        lo, hi = max(20.0, min(freq[0], nyq * 0.9)), min(freq[1], nyq)
        wn: float | tuple[float, float] = (lo, max(hi, lo * 1.05))
    else:
        wn = max(20.0, min(float(freq), nyq))
    sos = signal.butter(order, wn, kind, fs=sr, output="sos")
    return signal.sosfilt(sos, x).astype(np.float32)


def sweep_filter(x: Array, sr: int, f_start: float, f_end: float, block: int = 512) -> Array:
    """Low-pass whose cut-off glides exponentially from ``f_start`` to ``f_end`` (block-wise, state kept)."""
    out = np.empty_like(x)
    n_blocks = max(1, (len(x) + block - 1) // block)
    freqs = np.geomspace(max(f_start, 30.0), max(f_end, 30.0), n_blocks)
    zi = np.zeros((1, 2))
    for i, f in enumerate(freqs):
        b, a = signal.butter(2, min(f, sr / 2 * 0.95), "lowpass", fs=sr)
        seg = x[i * block : (i + 1) * block]
        y, zf = signal.lfilter(b, a, seg, zi=zi[0] * 1.0)
        zi[0] = zf
        out[i * block : i * block + len(seg)] = y
    return out


def band_sweep(x: Array, sr: int, centres: Array, q: float = 2.0, block: int = 256) -> Array:
    """Band-pass whose centre follows ``centres`` (one value per block), state kept between blocks."""
    out = np.empty_like(x)
    zi = np.zeros(2)
    for i in range(0, len(x), block):
        c = float(centres[min(i // block, len(centres) - 1)])
        c = min(max(c, 40.0), sr / 2 * 0.9)
        b, a = signal.iirpeak(c, q, fs=sr)
        seg = x[i : i + block]
        y, zi = signal.lfilter(b, a, seg, zi=zi)
        out[i : i + len(seg)] = y
    return out


def decay(sr: int, n: int, tau: float, attack: float = 0.001) -> Array:
    """An envelope ``[n]``: a linear attack of ``attack`` s, then ``exp(-t / tau)``."""
    t = time_axis(sr, n)
    env = np.exp(-t / max(tau, 1e-4))
    a = seconds(sr, attack)
    if a > 1 and a < n:
        env[:a] *= np.linspace(0, 1, a, dtype=np.float32)
    return env.astype(np.float32)


def adsr(sr: int, n: int, attack: float, decay_s: float, sustain: float, release: float) -> Array:
    """A piecewise-linear attack/decay/sustain/release envelope ``[n]`` (the release ends the clip)."""
    a, d, r = seconds(sr, attack), seconds(sr, decay_s), seconds(sr, release)
    s = max(0, n - a - d - r)
    env = np.concatenate([
        np.linspace(0, 1, a, endpoint=False), np.linspace(1, sustain, d, endpoint=False),
        np.full(s, sustain), np.linspace(sustain, 0, r),
    ])
    return np.pad(env, (0, max(0, n - len(env))))[:n].astype(np.float32)


def osc(sr: int, freq: Array | float, n: int, shape: str = "sine", phase: float = 0.0) -> Array:
    """An oscillator following ``freq`` (Hz, scalar or ``[n]``): sine, square, saw or triangle.

    Square and saw are band-limited by summing harmonics below Nyquist, so sweeps do not alias.
    """
    f = np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))
    ph = phase + 2 * np.pi * np.cumsum(f) / sr
    if shape == "sine":
        return np.sin(ph).astype(np.float32)
    if shape == "triangle":
        return (2 / np.pi * np.arcsin(np.sin(ph))).astype(np.float32)
    top = float(np.max(f)) if n else 1.0
    harmonics = max(1, int(sr / 2 / max(top, 1.0)))
    out = np.zeros(n)
    for k in range(1, min(harmonics, 40) + 1):
        if shape == "square" and k % 2 == 0:
            continue
        # fade harmonics out as they approach Nyquist along the sweep
        gain = np.clip((sr / 2 - k * f) / (0.1 * sr), 0, 1)
        out += gain * np.sin(k * ph) / k
    return (out * (4 / np.pi if shape == "square" else 2 / np.pi)).astype(np.float32)


def modal(sr: int, n: int, freqs: list[float], decays: list[float], amps: list[float], rng: np.random.Generator
          ) -> Array:
    """Sum of exponentially decaying sinusoids (a struck object's modes), random phases."""
    t = time_axis(sr, n).astype(np.float64)
    out = np.zeros(n)
    for f, tau, a in zip(freqs, decays, amps, strict=True):
        if f >= sr / 2 * 0.95:
            continue
        out += a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * np.exp(-t / tau)
    return out.astype(np.float32)


def normalise(x: Array, peak: float = 1.0) -> Array:
    m = float(np.max(np.abs(x))) if len(x) else 0.0
    return (x * (peak / m)).astype(np.float32) if m > 1e-9 else x.astype(np.float32)


def place(out: Array, x: Array, start: int, gain: float = 1.0) -> None:
    """Add ``x * gain`` into ``out`` at ``start`` (cropped at the end)."""
    if start >= len(out) or start + len(x) <= 0:
        return
    s0 = max(0, -start)
    end = min(len(out), start + len(x))
    out[max(start, 0) : end] += gain * x[s0 : s0 + end - max(start, 0)]


def fade(x: Array, sr: int, fade_in: float = 0.002, fade_out: float = 0.02) -> Array:
    """Short linear fades at both ends (no clicks where a sound is cut)."""
    y = x.copy()
    a, b = min(seconds(sr, fade_in), len(y) // 2), min(seconds(sr, fade_out), len(y) // 2)
    if a > 1:
        y[:a] *= np.linspace(0, 1, a, dtype=np.float32)
    if b > 1:
        y[-b:] *= np.linspace(1, 0, b, dtype=np.float32)
    return y


@dataclass(frozen=True)
class Space:
    """Where a sound is heard: a room's reverberation time, the wet share, and distance (low-pass, level).

    Attributes:
        room: words for captions ("", "in a small room", "in a large hall", "outdoors", "in a cave").
        rt60: seconds for the reverb to fall 60 dB (0: dry).
        wet: share of reverberant sound.
        distance: words for captions ("", "close up", "in the distance", "far away").
        cutoff: low-pass for the distance (Hz; 0: none).
        gain: level for the distance.
    """

    room: str = ""
    rt60: float = 0.0
    wet: float = 0.0
    distance: str = ""
    cutoff: float = 0.0
    gain: float = 1.0


ROOMS: tuple[tuple[str, float, float], ...] = (
    ("", 0.0, 0.0),
    ("in a small room", 0.35, 0.18),
    ("in a large hall", 1.6, 0.35),
    ("outdoors", 0.25, 0.06),
    ("in a cave", 2.4, 0.45),
)
DISTANCES: tuple[tuple[str, float, float], ...] = (
    ("", 0.0, 1.0),
    ("close up", 0.0, 1.0),
    ("in the distance", 3500.0, 0.6),
    ("far away", 1800.0, 0.4),
)


def draw_space(rng: np.random.Generator, dry_share: float = 0.4, far: bool = True) -> Space:
    """A random space: dry ``dry_share`` of the time, else one of :data:`ROOMS`; a distance when ``far``."""
    if rng.random() < dry_share:
        room = ROOMS[0]
    else:
        room = ROOMS[1 + int(rng.integers(len(ROOMS) - 1))]
    dist = DISTANCES[int(rng.integers(len(DISTANCES)))] if far else DISTANCES[0]
    return Space(room[0], room[1], room[2], dist[0], dist[1], dist[2])


def apply_space(x: Array, sr: int, space: Space, rng: np.random.Generator) -> Array:
    """Distance (low-pass, level, more reverb) and room reverb; the tail extends the clip by up to rt60/2."""
    y = x
    wet = space.wet
    if space.cutoff:
        y = filt(y, sr, "lowpass", space.cutoff)
        wet = min(0.7, wet + 0.15)
    if space.rt60 > 0:
        n_ir = seconds(sr, space.rt60)
        ir = white(rng, n_ir) * np.exp(-6.9 * time_axis(sr, n_ir) / space.rt60)
        ir = filt(ir, sr, "lowpass", 5000.0 if space.rt60 < 1 else 3000.0)
        ir[: seconds(sr, 0.004)] *= 0.2  # a short pre-delay before the diffuse tail
        ir = normalise(ir) * 0.25
        tail = seconds(sr, space.rt60 * 0.5)
        padded = np.concatenate([y, np.zeros(tail, dtype=np.float32)])
        rev = signal.fftconvolve(padded, ir)[: len(padded)].astype(np.float32)
        rev = normalise(rev, float(np.max(np.abs(padded))) or 1.0)
        y = (1 - wet) * padded + wet * rev
    return (y * space.gain).astype(np.float32)


def space_words(space: Space) -> list[str]:
    """Caption phrases for a space (empty strings dropped)."""
    return [w for w in (space.room, space.distance) if w]
