"""Extraction from archives (pk3/wz), WavPack through ffmpeg and plain trees, on files the tests write."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundgen.data.recipes.extract import PackageExtractor, Stager, decode_wavpack, safe_relative
from soundgen.data.recipes.packages import Licence, PackageSpec
from soundgen.errors import AudioReadError

SR = 16000
SPEC = PackageSpec("ufoai-sound", "sfx", "UFO: Alien Invasion")


def tone(freq: float = 440.0, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def ogg_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="OGG", subtype="VORBIS")
    return buf.getvalue()


def make_pk3(path: Path) -> dict[str, bytes]:
    scream = ogg_bytes(tone(880))
    members = {
        "sound/weapons/rifle_shot.ogg": ogg_bytes(tone(440)),
        "sound/aliens/scream1.ogg": scream,
        "sound/aliens/scream_copy.ogg": scream,  # same bytes as scream1: a duplicate
        "music/main_theme.ogg": ogg_bytes(tone(220, 1.0)),
        "textures/wall.tga": b"not audio",
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return members


def extractor(tmp_path: Path, limit: int | None = None) -> PackageExtractor:
    licence = Licence(summary="GPL-2+, CC-BY-SA-3.0", rules=[(["*"], "GPL-2+"), (["sound/aliens/*"], "CC-BY-SA-3.0")])
    return PackageExtractor(SPEC, licence, Stager(tmp_path / "staging", tmp_path / "work"), limit)


def test_pk3_members_are_staged_byte_for_byte_with_labels(tmp_path: Path) -> None:
    pk3 = tmp_path / "usr/share/games/ufoai/base/0snd.pk3"
    pk3.parent.mkdir(parents=True)
    members = make_pk3(pk3)
    result = extractor(tmp_path).run([pk3])
    by_origin = {c.source_file.split("::")[1]: c for c in result.clips}
    assert set(by_origin) == {"sound/weapons/rifle_shot.ogg", "sound/aliens/scream1.ogg", "music/main_theme.ogg"}
    assert result.duplicates == 1
    for member, clip in by_origin.items():
        assert (tmp_path / "staging" / clip.path).read_bytes() == members[member]
        assert clip.source == "ufoai-sound"
    assert by_origin["sound/weapons/rifle_shot.ogg"].category == "gunshot"
    assert by_origin["sound/aliens/scream1.ogg"].category == "voice"
    assert by_origin["music/main_theme.ogg"].category == "music/soundtrack"
    assert "rifle shot" in by_origin["sound/weapons/rifle_shot.ogg"].caption
    # per-file licences from the DEP-5 patterns; everything else gets the Files: * licence
    assert by_origin["sound/aliens/scream1.ogg"].licence == "CC-BY-SA-3.0"
    assert by_origin["sound/weapons/rifle_shot.ogg"].licence == "GPL-2+"
    assert all(c.path.startswith("ufoai-sound/ufoai/base/0snd.pk3/") for c in result.clips)


def test_limit_caps_clips_and_plain_files_are_linked(tmp_path: Path) -> None:
    root = tmp_path / "usr/share/games/ufoai/sounds"
    root.mkdir(parents=True)
    files = []
    for i, f in enumerate([300, 500, 700]):
        p = root / f"explosion_{i}.wav"
        sf.write(p, tone(f), SR)
        files.append(p)
    result = extractor(tmp_path, limit=2).run(files)
    assert len(result.clips) == 2
    staged = tmp_path / "staging" / result.clips[0].path
    assert staged.read_bytes() == files[0].read_bytes()
    assert all(c.category == "explosion" for c in result.clips)


def test_broken_archive_is_skipped_not_fatal(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pk3"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    good = tmp_path / "ok.wav"
    sf.write(good, tone(), SR)
    result = extractor(tmp_path).run([bad, good])
    assert len(result.clips) == 1 and len(result.skipped) == 1 and "broken.pk3" in result.skipped[0]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_wavpack_is_decoded_through_ffmpeg(tmp_path: Path) -> None:
    wav, wv = tmp_path / "src.wav", tmp_path / "usr/share/games/teeworlds/data/audio/foley_body_impact-01.wv"
    wv.parent.mkdir(parents=True)
    x = tone(330, 0.4)
    sf.write(wav, x, SR, subtype="PCM_16")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "wavpack", str(wv)], check=True)
    spec = PackageSpec("teeworlds-data", "sfx", "Teeworlds")
    result = PackageExtractor(spec, Licence(summary="CC-BY-SA-3.0"), Stager(tmp_path / "st", tmp_path / "w")).run([wv])
    (clip,) = result.clips
    assert clip.path.endswith(".wv.flac") and clip.category == "impact" and "body impact" in clip.caption
    y, rate = sf.read(tmp_path / "st" / clip.path, dtype="float32")
    assert rate == SR
    np.testing.assert_allclose(y, x, atol=1e-4)  # WavPack is lossless: only the 16-bit rounding remains
    with pytest.raises(AudioReadError, match="WavPack"):
        decode_wavpack(b"wvpk garbage", tmp_path / "bad.flac", "bad.wv")
    assert not (tmp_path / "bad.flac").exists()


def test_safe_relative_removes_traversal_and_odd_characters() -> None:
    assert safe_relative("pkg", "../../etc/pass wd.ogg") == "pkg/etc/pass_wd.ogg"
    assert safe_relative("pkg", "a::b/c.ogg") == "pkg/a_b/c.ogg"
