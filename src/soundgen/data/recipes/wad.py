"""Doom WAD files: the lump directory, DMX sound lumps (``DS*``) and MUS music lumps converted to MIDI.

Formats (as documented by the Doom community wiki and the DMX/MUS specifications):

* WAD: ``IWAD``/``PWAD`` magic, ``i32`` lump count, ``i32`` directory offset; directory entries are
  ``i32`` offset, ``i32`` size, ``char[8]`` name (NUL padded), all little-endian.
* DMX digital sound (``DS*`` lumps): ``u16`` format (3), ``u16`` sample rate, ``u32`` sample count that
  includes 16 pad bytes before and 16 after the sound, then unsigned 8-bit PCM.
* MUS: ``"MUS\\x1a"``, ``u16`` score length, ``u16`` score offset, ``u16`` primary and secondary channel
  counts, ``u16`` instrument count, ``u16`` reserved, the instrument list, then the event stream at a fixed
  140 ticks per second. :func:`mus_to_midi` turns it into a type-0 Standard MIDI File.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from soundgen.errors import CorruptFileError

DMX_FORMAT = 3
DMX_PAD = 16
MUS_MAGIC = b"MUS\x1a"
MIDI_MAGIC = b"MThd"
# MUS runs at 140 ticks per second; 70 ticks per quarter at 120 BPM (500000 us/quarter) gives the same rate.
MIDI_DIVISION = 70
MIDI_TEMPO_US = 500_000
MUS_PERCUSSION = 15
MIDI_PERCUSSION = 9
# MUS controller numbers 1..9 -> MIDI controllers (0 is a program change).
_MUS_CONTROLLERS = {1: 0, 2: 1, 3: 7, 4: 10, 5: 11, 6: 91, 7: 93, 8: 64, 9: 67}
# MUS system events 10..14 -> MIDI channel-mode controllers.
_MUS_SYSTEM = {10: 120, 11: 123, 12: 126, 13: 127, 14: 121}


@dataclass(frozen=True)
class Lump:
    """One entry of a WAD directory: its name and bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class PcmSound:
    """A decoded DMX sound: mono float32 samples ``[T]`` in [-1, 1] and their sample rate."""

    samples: np.ndarray
    sample_rate: int


def read_wad(data: bytes, label: str = "WAD") -> list[Lump]:
    """Parse a WAD file's directory and return its lumps in directory order.

    Args:
        data: the whole WAD file.
        label: a name for error messages.

    Raises:
        CorruptFileError: not a WAD, or a directory entry points outside the file.
    """
    if len(data) < 12 or data[:4] not in (b"IWAD", b"PWAD"):
        raise CorruptFileError(f"{label} is not a Doom WAD file (no IWAD/PWAD header)")
    count, offset = struct.unpack_from("<ii", data, 4)
    if count < 0 or offset < 12 or offset + 16 * count > len(data):
        raise CorruptFileError(f"{label}: WAD directory ({count} lumps at {offset}) lies outside the file")
    lumps = []
    for i in range(count):
        pos, size, raw = struct.unpack_from("<ii8s", data, offset + 16 * i)
        name = raw.split(b"\0", 1)[0].decode("ascii", "replace").upper()
        if size < 0 or pos < 0 or pos + size > len(data):
            raise CorruptFileError(f"{label}: lump {name} ({size} bytes at {pos}) lies outside the file")
        lumps.append(Lump(name, data[pos : pos + size]))
    return lumps


def is_dmx_sound(data: bytes) -> bool:
    """True when ``data`` starts like a DMX digital sound lump (format 3, plausible rate and length)."""
    if len(data) < 8 + 2 * DMX_PAD:
        return False
    fmt, rate, count = struct.unpack_from("<HHI", data, 0)
    return fmt == DMX_FORMAT and 4000 <= rate <= 96000 and 2 * DMX_PAD < count <= len(data) - 8


def decode_dmx_sound(data: bytes, label: str = "lump") -> PcmSound:
    """Decode a DMX sound lump to float samples, dropping the 16 pad bytes at each end.

    Returns:
        PcmSound with ``samples`` float32 ``[T]``.

    Raises:
        CorruptFileError: the header is not a DMX sound or its length does not fit the lump.
    """
    if not is_dmx_sound(data):
        raise CorruptFileError(f"{label} is not a DMX (format 3) sound lump or is truncated")
    _, rate, count = struct.unpack_from("<HHI", data, 0)
    pcm = np.frombuffer(data, dtype=np.uint8, count=count - 2 * DMX_PAD, offset=8 + DMX_PAD)
    samples = (pcm.astype(np.float32) - 128.0) / 128.0
    return PcmSound(samples, rate)


def _varlen(value: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


class _MusReader:
    def __init__(self, data: bytes, start: int, label: str) -> None:
        self.data, self.pos, self.label = data, start, label

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise CorruptFileError(f"{self.label}: MUS score ends in the middle of an event")
        b = self.data[self.pos]
        self.pos += 1
        return b


class _ChannelMap:
    """MUS channels -> MIDI channels: percussion to 9, the others in order of first use, skipping 9."""

    def __init__(self) -> None:
        self.map: dict[int, int] = {MUS_PERCUSSION: MIDI_PERCUSSION}

    def __call__(self, mus_channel: int) -> int:
        if mus_channel not in self.map:
            used = len([c for c in self.map.values() if c != MIDI_PERCUSSION])
            self.map[mus_channel] = used if used < MIDI_PERCUSSION else min(used + 1, 15)
        return self.map[mus_channel]


def _mus_event(kind: int, ch: int, r: _MusReader, volumes: dict[int, int]) -> bytes | None:
    """Translate one MUS event into MIDI message bytes (None for events with no MIDI counterpart)."""
    if kind == 0:  # release note
        return bytes([0x80 | ch, r.byte() & 0x7F, 0])
    if kind == 1:  # play note, optionally with a new volume
        note = r.byte()
        if note & 0x80:
            volumes[ch] = r.byte() & 0x7F
        return bytes([0x90 | ch, note & 0x7F, volumes.get(ch, 127)])
    if kind == 2:  # pitch bend, 8-bit -> 14-bit
        value = min(r.byte() << 6, 0x3FFF)
        return bytes([0xE0 | ch, value & 0x7F, value >> 7])
    if kind == 3:  # system event
        ctrl = _MUS_SYSTEM.get(r.byte() & 0x7F)
        return None if ctrl is None else bytes([0xB0 | ch, ctrl, 0])
    if kind == 4:  # controller change
        ctrl, value = r.byte() & 0x7F, min(r.byte() & 0x7F, 127)
        if ctrl == 0:
            return bytes([0xC0 | ch, value])
        mapped = _MUS_CONTROLLERS.get(ctrl)
        return None if mapped is None else bytes([0xB0 | ch, mapped, value])
    if kind == 5:  # end of measure
        return None
    raise CorruptFileError(f"{r.label}: unknown MUS event type {kind} at byte {r.pos - 1}")


def mus_to_midi(data: bytes, label: str = "MUS lump") -> bytes:
    """Convert a MUS score (Doom music lump) to a type-0 Standard MIDI File.

    Raises:
        CorruptFileError: not a MUS lump, or its score is truncated or has unknown events.
    """
    if len(data) < 16 or not data.startswith(MUS_MAGIC):
        raise CorruptFileError(f"{label} is not a MUS music lump")
    score_len, score_start = struct.unpack_from("<HH", data, 4)
    if score_start >= len(data):
        raise CorruptFileError(f"{label}: MUS score offset {score_start} lies outside the lump")
    reader = _MusReader(data[: score_start + score_len] if score_len else data, score_start, label)
    channels, volumes = _ChannelMap(), dict[int, int]()
    track = bytearray(b"\x00\xff\x51\x03" + MIDI_TEMPO_US.to_bytes(3, "big"))
    delay = 0
    while True:
        head = reader.byte()
        kind, ch = (head >> 4) & 7, channels(head & 0x0F)
        if kind == 6:  # score end
            break
        message = _mus_event(kind, ch, reader, volumes)
        if message is not None:
            track += _varlen(delay) + message
            delay = 0
        if head & 0x80:
            value = 0
            while True:
                b = reader.byte()
                value = (value << 7) | (b & 0x7F)
                if not b & 0x80:
                    break
            delay += value
    track += _varlen(delay) + b"\xff\x2f\x00"
    header = MIDI_MAGIC + struct.pack(">IHHH", 6, 0, 1, MIDI_DIVISION)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def midi_tempo_bpm(data: bytes) -> float | None:
    """The first tempo (set-tempo meta event) of a Standard MIDI File in beats per minute, if any."""
    i = data.find(b"\xff\x51\x03")
    if data[:4] != MIDI_MAGIC or i < 0 or i + 6 > len(data):
        return None
    us = int.from_bytes(data[i + 3 : i + 6], "big")
    return 60_000_000 / us if us else None
