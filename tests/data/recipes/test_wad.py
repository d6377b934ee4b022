"""Doom WAD parsing, DMX sound lumps and MUS -> MIDI conversion, on WADs the tests build byte by byte."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundgen.data.recipes import wad
from soundgen.data.recipes.extract import PackageExtractor, Stager
from soundgen.data.recipes.packages import Licence, PackageSpec
from soundgen.errors import CorruptFileError

SmfMaker = Callable[..., bytes]


def dmx_lump(pcm: np.ndarray, rate: int = 11025) -> bytes:
    """A DMX format-3 lump: header, 16 pad bytes (first sample), the samples, 16 pad bytes (last sample)."""
    body = bytes([int(pcm[0])] * 16) + pcm.astype(np.uint8).tobytes() + bytes([int(pcm[-1])] * 16)
    return struct.pack("<HHI", 3, rate, len(body)) + body


def mus_lump() -> bytes:
    """A MUS score: program 40 on channel 0, note 60 (volume 100) for 140 ticks (1 s), then a drum hit."""
    events = bytes([
        0x40, 0x00, 40,          # controller change ch0: program 40 (violin)
        0x90, 0x80 | 60, 100,    # play note 60 with volume 100, last-in-group -> delay follows
        0x81, 0x0C,              # delay 140 ticks = 0x81 0x0C (1*128 + 12)
        0x00, 60,                # release note 60
        0x1F, 36,                # play note 36 on MUS channel 15 (percussion), previous volume
        0x60,                    # score end
    ])
    header = b"MUS\x1a" + struct.pack("<HHHHHH", len(events), 16, 1, 0, 0, 0)
    return header + events


def build_wad(lumps: list[tuple[str, bytes]]) -> bytes:
    data = bytearray(b"PWAD" + struct.pack("<ii", len(lumps), 0))
    directory = bytearray()
    for name, payload in lumps:
        directory += struct.pack("<ii8s", len(data), len(payload), name.encode())
        data += payload
    struct.pack_into("<i", data, 8, len(data))
    return bytes(data + directory)


def test_dmx_lump_decodes_to_the_samples_without_padding() -> None:
    pcm = (128 + 100 * np.sin(np.linspace(0, 20, 500))).astype(np.uint8)
    sound = wad.decode_dmx_sound(dmx_lump(pcm, 22050))
    assert sound.sample_rate == 22050
    np.testing.assert_allclose(sound.samples, (pcm.astype(np.float32) - 128) / 128)
    with pytest.raises(CorruptFileError):
        wad.decode_dmx_sound(dmx_lump(pcm)[:100])  # length field larger than the lump


def test_read_wad_lists_lumps_and_rejects_garbage() -> None:
    data = build_wad([("DSBAREXP", b"abc"), ("D_E1M1", b"MThd")])
    lumps = wad.read_wad(data)
    assert [(lump.name, lump.data) for lump in lumps] == [("DSBAREXP", b"abc"), ("D_E1M1", b"MThd")]
    with pytest.raises(CorruptFileError, match="not a Doom WAD"):
        wad.read_wad(b"RIFF" + bytes(20))
    broken = bytearray(data)
    struct.pack_into("<i", broken, 4, 1000)  # 1000 lumps: the directory runs past the end
    with pytest.raises(CorruptFileError, match="outside the file"):
        wad.read_wad(bytes(broken))


def test_mus_to_midi_keeps_notes_programs_timing_and_percussion() -> None:
    from tinysoundfont import midi as tmidi

    events = tmidi.load_memory(wad.mus_to_midi(mus_lump()))
    ons = [(e.t, e.channel, e.action.key, e.action.velocity) for e in events
           if isinstance(e.action, tmidi.NoteOn) and e.action.velocity > 0]
    offs = [(e.t, e.channel, e.action.key) for e in events if isinstance(e.action, tmidi.NoteOff)]
    programs = [(e.channel, e.action.program) for e in events if isinstance(e.action, tmidi.ProgramChange)]
    assert programs == [(0, 40)]
    assert ons[0] == (0.0, 0, 60, 100)
    assert offs[0][1:] == (0, 60) and offs[0][0] == pytest.approx(1.0, abs=1e-3)  # 140 ticks at 140 Hz
    assert ons[1][1:3] == (9, 36) and ons[1][0] == pytest.approx(1.0, abs=1e-3)  # MUS 15 -> MIDI percussion
    assert ons[1][3] == 127  # the percussion channel had no volume yet: the MUS default
    with pytest.raises(CorruptFileError):
        wad.mus_to_midi(mus_lump()[:-3])  # truncated: ends inside an event


def test_midi_tempo_bpm_reads_the_set_tempo_event(smf_one_note: SmfMaker) -> None:
    assert wad.midi_tempo_bpm(smf_one_note()) == pytest.approx(120.0)
    assert wad.midi_tempo_bpm(b"not midi") is None


def test_extract_wad_stages_sounds_and_music(tmp_path: Path, smf_one_note: SmfMaker) -> None:
    pcm = (128 + 90 * np.sin(np.linspace(0, 60, 2000))).astype(np.uint8)
    wad_path = tmp_path / "game.wad"
    wad_path.write_bytes(build_wad([
        ("DSBAREXP", dmx_lump(pcm)), ("DSPISTOL", dmx_lump(pcm)),  # identical audio: staged once
        ("D_E1M1", mus_lump()), ("D_E1M2", smf_one_note()), ("PLAYPAL", bytes(768)),
    ]))
    spec = PackageSpec("freedoom", "sfx", "Freedoom")
    stager = Stager(tmp_path / "staging", tmp_path / "work")
    result = PackageExtractor(spec, Licence(summary="BSD-3-Clause"), stager).run([wad_path])
    assert [c.category for c in result.clips] == ["explosion"]
    clip = result.clips[0]
    assert "barrel explosion" in clip.caption and clip.licence == "BSD-3-Clause"
    assert clip.source_file.endswith("game.wad::DSBAREXP")
    audio, rate = sf.read(tmp_path / "staging" / clip.path, dtype="float32")
    assert rate == 11025 and len(audio) == len(pcm)
    np.testing.assert_allclose(audio, (pcm.astype(np.float32) - 128) / 128, atol=1 / 32768)
    assert result.duplicates == 1
    assert sorted(m.name for m in result.midis) == ["E1M1", "E1M2"]
    assert all(m.path.read_bytes().startswith(b"MThd") for m in result.midis)
    assert [m.tempo_known for m in sorted(result.midis, key=lambda m: m.name)] == [False, True]
