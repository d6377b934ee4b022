"""Short musical phrases rendered through the General MIDI SoundFont: one-shots, chords, runs, melodies, loops.

Scores of the music21 corpus give long excerpts of real pieces; these give what a game maker asks for by name:
"a calm piano melody", "a sad string chord progression", "a fast rock drum beat". Each phrase is drawn from
``(seed, family, index)`` alone: an instrument of the family, a key and mode, a tempo, a dynamic and one of the
phrase kinds, then played note by note on ``tinysoundfont`` (no MIDI file in between). Captions name the
instrument, the kind, the key and mode, the tempo in words and the dynamics.

The notes are a pure function of the seed; the audio is too, up to the state tinysoundfont's voices keep from
the phrase before (differences measured at -68 dB or less, inaudible).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundgen.data.recipes.render import PERCUSSION_CHANNEL, silence, synth_for

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_KEYS = ("C", "C sharp", "D", "E flat", "E", "F", "F sharp", "G", "A flat", "A", "B flat", "B")

# family -> (GM program, instrument words, lowest and highest MIDI note of its melodies)
PHRASE_INSTRUMENTS: dict[str, tuple[tuple[int, str, int, int], ...]] = {
    "piano": ((0, "piano", 48, 84), (1, "bright piano", 48, 84), (4, "electric piano", 48, 80)),
    "organ": ((19, "church organ", 43, 79), (16, "organ", 48, 79), (17, "rock organ", 48, 79)),
    "strings": ((48, "string ensemble", 43, 79), (40, "violin", 55, 88), (42, "cello", 36, 64),
                (49, "string pad", 43, 76)),
    "brass": ((56, "trumpet", 55, 79), (60, "french horn", 41, 72), (61, "brass section", 48, 74),
              (57, "trombone", 40, 67)),
    "woodwind": ((73, "flute", 60, 91), (68, "oboe", 58, 86), (71, "clarinet", 50, 84), (70, "bassoon", 34, 65)),
    "guitar": ((24, "acoustic guitar", 40, 76), (25, "steel guitar", 40, 76), (27, "electric guitar", 40, 76),
               (29, "distorted guitar", 40, 72), (46, "harp", 36, 88)),
    "choir": ((52, "choir", 48, 76), (53, "voice oohs", 48, 76), (91, "choir pad", 48, 76)),
    "synth": ((80, "square synth lead", 55, 84), (81, "sawtooth synth lead", 48, 84), (89, "warm synth pad", 43, 76),
              (38, "synth bass", 28, 55), (90, "polysynth", 48, 79)),
    "mallets": ((12, "marimba", 53, 89), (11, "vibraphone", 53, 89), (13, "xylophone", 65, 96),
                (14, "tubular bells", 60, 77), (8, "celesta", 60, 96), (10, "music box", 60, 96)),
    "drums": ((0, "drum kit", 0, 0),),
}
PHRASE_FAMILIES: tuple[str, ...] = tuple(PHRASE_INSTRUMENTS)
_KINDS = ("melody", "chords", "arpeggio", "run", "one-shot", "melody")
_DYNAMICS = (("softly", 55), ("gently", 70), ("", 88), ("loudly", 110))
_TEMPI = ((60, 76, "slow"), (80, 120, "moderate"), (126, 168, "fast"))
# drum kit notes (General MIDI percussion)
_KICK, _SNARE, _HAT, _OPEN_HAT, _CRASH, _RIDE, _TOM_LO, _TOM_HI, _CLAP = 36, 38, 42, 46, 49, 51, 45, 50, 39
_BEATS = {  # 16 sixteenth-note steps: {note: steps}
    "rock beat": {_KICK: (0, 8, 10), _SNARE: (4, 12), _HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
    "four-on-the-floor dance beat": {_KICK: (0, 4, 8, 12), _CLAP: (4, 12), _OPEN_HAT: (2, 6, 10, 14)},
    "breakbeat": {_KICK: (0, 10), _SNARE: (4, 12, 15), _HAT: tuple(range(0, 16, 2))},
    "hip hop beat": {_KICK: (0, 3, 10), _SNARE: (4, 12), _HAT: tuple(range(0, 16, 2))},
    "march snare pattern": {_SNARE: (0, 2, 3, 4, 6, 8, 10, 11, 12, 14), _KICK: (0, 8)},
    "tom fill": {_TOM_HI: (0, 1, 2, 3), _TOM_LO: (4, 5, 6, 7), _SNARE: (8, 9, 10, 11), _KICK: (12,), _CRASH: (12,)},
    "jazz ride pattern": {_RIDE: (0, 4, 6, 8, 12, 14), _KICK: (0,), _HAT: (4, 12)},
}


@dataclass(frozen=True)
class Phrase:
    """A rendered phrase: mono float32 ``samples [T]`` (peak -1 dBFS) and its captions (fullest first)."""

    name: str
    samples: np.ndarray
    captions: list[str]
    tags: list[str]
    category: str


def _a(phrase: str) -> str:
    """``phrase`` with its indefinite article."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _mood(minor: bool, tempo: str) -> str:
    if tempo == "slow":
        return "sad" if minor else "calm"
    if tempo == "fast":
        return "tense" if minor else "upbeat"
    return "melancholic" if minor else "cheerful"


def _notes(rng: np.random.Generator, kind: str, root: int, scale: tuple[int, ...], lo: int, hi: int, beat: float
           ) -> list[tuple[float, float, list[int]]]:
    """(start s, length s, MIDI notes) of one phrase."""
    def degree(d: int) -> int:
        octave, step = divmod(d, len(scale))
        return root + 12 * octave + scale[step]

    centre = max(0, (lo + hi) // 2 - root) // 12 * 7
    out: list[tuple[float, float, list[int]]] = []
    if kind == "one-shot":
        chord = bool(rng.random() < 0.5)
        notes = [degree(centre + k) for k in ((0, 2, 4) if chord else (0,))]
        out.append((0.0, beat * rng.uniform(2, 4), notes))
    elif kind == "chords":
        prog = ((0, 4, 5, 3), (0, 3, 4, 0), (5, 3, 0, 4), (0, 5, 3, 4))[int(rng.integers(4))]
        length = beat * (2 if rng.random() < 0.5 else 4)
        for i, d in enumerate(prog):
            out.append((i * length, length * 0.95, [degree(centre - 7 + d + k) for k in (0, 2, 4, 7)]))
    elif kind == "arpeggio":
        prog = ((0, 5, 3, 4), (0, 4, 5, 3))[int(rng.integers(2))]
        t, step = 0.0, beat / 2
        for d in prog:
            for k in (0, 2, 4, 7, 4, 2):
                out.append((t, step * 1.5, [degree(centre + d + k)]))
                t += step
    elif kind == "run":
        n = int(rng.integers(8, 16))
        up = rng.random() < 0.5
        step = beat / (2 if rng.random() < 0.5 else 4)
        for i in range(n):
            out.append((i * step, step * 1.1, [degree(centre + (i if up else n - 1 - i) - 4)]))
    else:  # melody: a bounded random walk with a rhythm of quarters and eighths, ending on the tonic
        t, d = 0.0, centre
        for _ in range(int(rng.integers(8, 20))):
            length = beat * float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
            d = int(np.clip(d + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), centre - 5, centre + 7))
            out.append((t, length * 0.9, [degree(d)]))
            t += length
        out.append((t, beat * 2, [degree(centre)]))
    return [(s, ln, [n for n in notes if 0 < n < 128]) for s, ln, notes in out]


def _play(synth: object, events: list[tuple[float, int, int, int]], total: float, sr: int) -> np.ndarray:
    """Render (time s, channel, note, velocity; 0 = off) events on the synth for ``total`` seconds."""
    out = []
    now = 0.0
    for t, chan, note, vel in sorted(events, key=lambda e: (e[0], e[3])):
        if t > now:
            n = int(round((t - now) * sr))
            if n:
                out.append(np.frombuffer(synth.generate(n), dtype=np.float32))  # type: ignore[attr-defined]
            now = t
        if vel:
            synth.noteon(chan, note, vel)  # type: ignore[attr-defined]
        else:
            synth.noteoff(chan, note)  # type: ignore[attr-defined]
    rest = int(round((total - now) * sr))
    if rest > 0:
        out.append(np.frombuffer(synth.generate(rest), dtype=np.float32))  # type: ignore[attr-defined]
    stereo = np.concatenate(out).reshape(-1, 2) if out else np.zeros((0, 2), np.float32)
    return stereo.mean(axis=1).astype(np.float32)


def _reset(synth: object) -> None:
    """Silence every voice (waiting out their release: see render.silence) and put every channel's controllers,
    pitch bend and program back to their defaults."""
    silence(synth)
    for chan in range(16):
        synth.control_change(chan, 121, 0)  # type: ignore[attr-defined]  # reset all controllers
        for controller, value in ((7, 100), (10, 64), (11, 127), (1, 0), (64, 0)):  # volume, pan, expression, ...
            synth.control_change(chan, controller, value)  # type: ignore[attr-defined]
        synth.pitchbend(chan, 8192)  # type: ignore[attr-defined]
        synth.program_change(chan, 0, chan == PERCUSSION_CHANNEL)  # type: ignore[attr-defined]


def phrase(family: str, index: int, soundfont: Path, seed: int = 0, sample_rate: int = 16000) -> Phrase:
    """Phrase ``index`` of ``family`` (deterministic in its arguments and the SoundFont).

    Raises:
        KeyError: an unknown family.
        MissingDependencyError: tinysoundfont or the SoundFont is missing.
    """
    rng = np.random.default_rng([seed, zlib.crc32(family.encode()), index])
    synth = synth_for(soundfont, sample_rate, owner="phrases")
    _reset(synth)
    program, inst, lo, hi = PHRASE_INSTRUMENTS[family][int(rng.integers(len(PHRASE_INSTRUMENTS[family])))]
    tmin, tmax, tempo = _TEMPI[int(rng.integers(len(_TEMPI)))]
    bpm = float(rng.uniform(tmin, tmax))
    beat = 60.0 / bpm
    dyn, vel = _DYNAMICS[int(rng.integers(len(_DYNAMICS)))]
    if family == "drums":
        return _drum_phrase(rng, synth, family, index, bpm, tempo, dyn, vel, sample_rate)
    synth.program_change(0, program, False)  # type: ignore[attr-defined]
    minor = bool(rng.random() < 0.5)
    key = int(rng.integers(12))
    root = 12 * ((lo + hi) // 2 // 12) + key - 12
    kind = str(rng.choice(_KINDS))
    events = []
    notes = _notes(rng, kind, root, _MINOR if minor else _MAJOR, lo, hi, beat)
    for start, length, keys in notes:
        for k in keys:
            v = int(np.clip(vel + rng.integers(-8, 9), 20, 127))
            events += [(start, 0, k, v), (start + length, 0, k, 0)]
    end = max(s + ln for s, ln, _ in notes) + 1.0
    x = _play(synth, events, end, sample_rate)
    _reset(synth)
    mode = "minor" if minor else "major"
    mood = _mood(minor, tempo)
    what = {"melody": "melody", "chords": "chord progression", "arpeggio": "arpeggio", "run": "scale run",
            "one-shot": "chord" if len(notes[0][2]) > 1 else "single note"}[kind]
    how = f", played {dyn}" if dyn else ""
    captions = [
        _a(f"{mood} {inst} {what} in {_KEYS[key]} {mode}, {tempo} tempo ({bpm:.0f} BPM){how}"),
        _a(f"{mood} {inst} {what}"), f"{inst} {what} in {_KEYS[key]} {mode}", _a(f"{tempo} {inst} {what}{how}"),
        f"{family} music: {_a(what)} on the {inst}", _a(f"{what} in a {mode} key, played on {inst}"),
    ]
    tags = [family, *inst.split(), what, mode, tempo, mood]
    return Phrase(f"{family}_{index:05d}", _finish(x), list(dict.fromkeys(captions)), tags, f"music/{family}")


def _drum_phrase(rng: np.random.Generator, synth: object, family: str, index: int, bpm: float, tempo: str, dyn: str,
                 vel: int, sr: int) -> Phrase:
    synth.program_change(PERCUSSION_CHANNEL, 0, True)  # type: ignore[attr-defined]
    name = str(rng.choice(list(_BEATS)))
    pattern = _BEATS[name]
    bars = int(rng.integers(1, 4))
    sixteenth = 60.0 / bpm / 4
    events = []
    for bar in range(bars):
        for note, steps in pattern.items():
            for s in steps:
                t = (bar * 16 + s) * sixteenth
                v = int(np.clip(vel + rng.integers(-10, 11) + (10 if s % 4 == 0 else 0), 20, 127))
                events += [(t, PERCUSSION_CHANNEL, note, v), (t + sixteenth * 0.9, PERCUSSION_CHANNEL, note, 0)]
    end = bars * 16 * sixteenth + 0.8
    x = _play(synth, events, end, sr)
    _reset(synth)
    how = f", played {dyn}" if dyn else ""
    captions = [
        f"a {tempo} drum kit {name} at {bpm:.0f} BPM{how}", f"a {tempo} {name}", f"drums playing a {name}",
        f"a {name} on a drum kit", f"a drum loop, {name}", f"{tempo} drums{how}",
    ]
    tags = ["drums", "drum kit", name, tempo, "loop"]
    return Phrase(f"{family}_{index:05d}", _finish(x), list(dict.fromkeys(captions)), tags, "music/drums")


def _finish(x: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return (x * (10 ** (-1.0 / 20) / peak)).astype(np.float32) if peak > 1e-6 else x
