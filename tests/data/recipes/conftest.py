"""Fixtures shared by the recipe tests."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest


def _smf_one_note(seconds: float = 1.0, note: int = 69, program: int = 0) -> bytes:
    """A type-0 MIDI file: 120 BPM, 480 ticks per quarter, one note held for ``seconds``."""
    ticks = int(seconds * 960)  # 120 BPM: 2 quarters per second
    def vlq(v: int) -> bytes:
        out = [v & 0x7F]
        v >>= 7
        while v:
            out.append(0x80 | (v & 0x7F))
            v >>= 7
        return bytes(reversed(out))
    track = (b"\x00\xff\x51\x03\x07\xa1\x20" + b"\x00" + bytes([0xC0, program]) + b"\x00" + bytes([0x90, note, 100])
             + vlq(ticks) + bytes([0x80, note, 0]) + b"\x00\xff\x2f\x00")
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(track)) + track


@pytest.fixture
def smf_one_note() -> Callable[..., bytes]:
    """A function writing a one-note type-0 MIDI file: ``smf_one_note(seconds=1.0, note=69, program=0)``."""
    return _smf_one_note
