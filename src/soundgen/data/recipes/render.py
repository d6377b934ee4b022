"""Render MIDI to audio through a General MIDI SoundFont (tinysoundfont), with instrument and tempo changes.

:func:`render_midi` plays a Standard MIDI File through ``tinysoundfont`` at the dataset's sample rate: the
tempo is scaled by moving every event in time, and an :class:`Arrangement` can replace the programs of all
melodic channels with one General MIDI instrument (channel 10, percussion, is left alone). Rendering runs in
blocks and stops at ``max_seconds``, so memory stays bounded whatever the MIDI file says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundgen.errors import AudioReadError, MissingDependencyError

log = logging.getLogger(__name__)

PERCUSSION_CHANNEL = 9
BLOCK_SECONDS = 1.0
TAIL_SECONDS = 1.5


@dataclass(frozen=True)
class Instrument:
    """A General MIDI program (0-based) and the category family it belongs to."""

    program: int
    name: str
    family: str  # "piano", "organ", "strings", ... -> category "music/<family>"


# A spread of General MIDI instruments per family; the renderer picks one family per rendering.
GM_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument(0, "acoustic grand piano", "piano"),
    Instrument(1, "bright piano", "piano"),
    Instrument(4, "electric piano", "piano"),
    Instrument(6, "harpsichord", "harpsichord"),
    Instrument(19, "church organ", "organ"),
    Instrument(16, "drawbar organ", "organ"),
    Instrument(20, "reed organ", "organ"),
    Instrument(48, "string ensemble", "strings"),
    Instrument(40, "violin", "strings"),
    Instrument(42, "cello", "strings"),
    Instrument(45, "pizzicato strings", "strings"),
    Instrument(56, "trumpet", "brass"),
    Instrument(60, "french horn", "brass"),
    Instrument(61, "brass section", "brass"),
    Instrument(73, "flute", "woodwind"),
    Instrument(68, "oboe", "woodwind"),
    Instrument(71, "clarinet", "woodwind"),
    Instrument(24, "nylon guitar", "guitar"),
    Instrument(25, "steel guitar", "guitar"),
    Instrument(52, "choir", "choir"),
    Instrument(12, "marimba", "mallets"),
    Instrument(11, "vibraphone", "mallets"),
    Instrument(80, "square lead synth", "synth"),
    Instrument(89, "warm pad synth", "synth"),
)
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(i.family for i in GM_INSTRUMENTS))


@dataclass(frozen=True)
class Arrangement:
    """How to play a MIDI file: an instrument for every melodic channel (None keeps the file's own programs)
    and a tempo factor (1.2 plays 20% faster)."""

    instrument: Instrument | None = None
    tempo_factor: float = 1.0


@dataclass
class Rendering:
    """Rendered audio: mono float32 ``samples [T]`` peak-normalised to -1 dBFS, at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int
    truncated: bool

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


_SYNTH_CACHE: dict[tuple[str, str, int], object] = {}


def synth_for(soundfont: Path, sample_rate: int, owner: str = "midi") -> object:
    """A tinysoundfont Synth with the SoundFont loaded, cached per process and ``owner`` (loading FluidR3 takes
    ~0.5 s). Owners keep their own synthesiser because a MIDI file leaves controllers set that another user of
    the synthesiser (the phrases of :mod:`.phrases`) must not inherit."""
    try:
        import tinysoundfont
    except ImportError as e:
        raise MissingDependencyError(
            "rendering MIDI needs tinysoundfont: pip install --no-deps tinysoundfont"
        ) from e
    key = (owner, str(soundfont), sample_rate)
    if key not in _SYNTH_CACHE:
        if not soundfont.is_file():
            raise MissingDependencyError(
                f"SoundFont {soundfont} not found: install it (apt-get install fluid-soundfont-gm)"
            )
        synth = tinysoundfont.Synth(samplerate=sample_rate, gain=-6.0)
        synth.sfload(str(soundfont), max_voices=128)
        for old in [k for k in _SYNTH_CACHE if k[0] == owner]:  # one SoundFont per owner in memory
            del _SYNTH_CACHE[old]
        _SYNTH_CACHE[key] = synth
    return _SYNTH_CACHE[key]


def _events(midi: bytes, arrangement: Arrangement, label: str) -> list:  # type: ignore[type-arg]
    """Parse MIDI into tinysoundfont events with the arrangement applied (times in seconds)."""
    from tinysoundfont import midi as tmidi

    try:
        events = tmidi.load_memory(midi, persistent=False)
    except Exception as e:  # the C parser raises plain exceptions on broken files
        raise AudioReadError(f"cannot parse MIDI {label}: {e}") from e
    inst = arrangement.instrument
    kept = []
    for ev in events:
        ev.t /= arrangement.tempo_factor
        if inst is not None and isinstance(ev.action, tmidi.ProgramChange) and ev.channel != PERCUSSION_CHANNEL:
            continue  # replaced by the arrangement's program below
        kept.append(ev)
    if inst is not None:
        first = [tmidi.Event(tmidi.ProgramChange(inst.program), t=0.0, channel=c, persistent=False)
                 for c in range(16) if c != PERCUSSION_CHANNEL]
        kept = first + kept
    return kept


def silence(synth: object) -> None:
    """Silence a shared synth before a rendering. "All sounds off" only starts a quick release, so the voices a
    previous rendering left (a note cut off at ``max_seconds``, a long decay) would otherwise sound into the start
    of the next one, and what a clip sounds like would depend on which clips the same worker rendered before it.
    Runs the synth, discarding its output, until it is silent (at most 80,000 samples)."""
    synth.callback = None  # type: ignore[attr-defined]
    synth.sounds_off()  # type: ignore[attr-defined]
    for _ in range(100):
        buf = synth.generate(800)  # type: ignore[attr-defined]
        if not np.any(np.frombuffer(buf, dtype=np.float32)):
            return


def render_midi(
    midi: bytes,
    soundfont: Path,
    sample_rate: int = 16000,
    arrangement: Arrangement = Arrangement(),
    max_seconds: float = 180.0,
    label: str = "MIDI",
) -> Rendering:
    """Render a Standard MIDI File to mono audio.

    Args:
        midi: the file's bytes.
        soundfont: an SF2 file (FluidR3_GM.sf2).
        sample_rate: output rate in Hz (render directly at the dataset rate: no resampling needed).
        arrangement: instrument override and tempo factor.
        max_seconds: stop after this much audio (the result says ``truncated``).
        label: a name for error messages.

    Returns:
        Rendering with ``samples`` float32 ``[T]``, ``T`` = last event time / tempo factor + 1.5 s tail
        (at most ``max_seconds``).

    Raises:
        AudioReadError: the MIDI cannot be parsed or has no notes.
        MissingDependencyError: tinysoundfont or the SoundFont is missing.
    """
    from tinysoundfont import Sequencer
    from tinysoundfont import midi as tmidi

    events = _events(midi, arrangement, label)
    notes = [e.t for e in events if isinstance(e.action, tmidi.NoteOn) and e.action.velocity > 0]
    if not notes:
        raise AudioReadError(f"MIDI {label} has no notes")
    synth = synth_for(soundfont, sample_rate)
    silence(synth)
    for chan in range(16):  # a clean state: the synth is shared between renderings in this process
        synth.control_change(chan, 121, 0)  # type: ignore[attr-defined]
        synth.program_change(chan, 0, chan == PERCUSSION_CHANNEL)  # type: ignore[attr-defined]
    end = max(e.t for e in events) + TAIL_SECONDS
    total = int(min(end, max_seconds) * sample_rate)
    seq = Sequencer(synth)
    seq.add(events)
    out = np.empty(total, dtype=np.float32)
    block = int(BLOCK_SECONDS * sample_rate)
    for start in range(0, total, block):
        n = min(block, total - start)
        buf = synth.generate(n)  # type: ignore[attr-defined]
        stereo = np.frombuffer(buf, dtype=np.float32).reshape(-1, 2)
        out[start : start + n] = stereo.mean(axis=1)
    synth.sounds_off()  # type: ignore[attr-defined]
    synth.callback = None  # type: ignore[attr-defined]
    peak = float(np.max(np.abs(out))) if total else 0.0
    if peak < 1e-5:
        raise AudioReadError(f"MIDI {label} rendered to silence (no playable notes in the SoundFont?)")
    out *= 10 ** (-1.0 / 20) / peak
    return Rendering(out, sample_rate, truncated=end > max_seconds)
