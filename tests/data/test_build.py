"""Dataset builder: skipping broken files, splits, dedupe, slicing, archives, incremental rebuilds."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundgen.audio.stream import declared_frames
from soundgen.data.build import BuildConfig, build_dataset, split_of
from soundgen.data.build_pool import execute_pool
from soundgen.data.build_worker import (
    DataSourceError,
    ItemResult,
    ProcessSettings,
    SourceItem,
    process_item,
    scan_sources,
)
from soundgen.data.manifest import SPLITS, Clip, read_manifest
from soundgen.errors import ConfigError


def tone(path: Path, freq: float = 440.0, seconds: float = 0.5, sr: int = 22050, channels: int = 1,
         amp: float = 0.5, fmt: str | None = None, subtype: str | None = None) -> Path:
    t = np.arange(int(sr * seconds)) / sr
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, format=fmt, subtype=subtype)
    return path


def encoded(freq: float, fmt: str, seconds: float = 0.5, sr: int = 22050) -> bytes:
    t = np.arange(int(sr * seconds)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, format=fmt)
    return buf.getvalue()


def all_clips(out: Path) -> list[Clip]:
    return [c for s in SPLITS for c in read_manifest(out, s)]


def tiny(**kw: object) -> BuildConfig:
    base = BuildConfig.tiny().__dict__ | kw
    return BuildConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def broken_folder(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    tone(src / "good" / "bell.wav", 440)
    tone(src / "good" / "horn.flac", 300, sr=16000)
    (src / "bad").mkdir()
    (src / "bad" / "empty.wav").write_bytes(b"")
    (src / "bad" / "dangling.wav").symlink_to(src / "bad" / "gone.wav")
    (src / "bad" / "corrupt.ogg").write_bytes(b"OggS" + os.urandom(300))
    (src / "bad" / "noise.mp3").write_bytes(b"this is not an mp3 file at all " * 20)
    t = np.arange(8000) / 16000
    nan = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    nan[100:200] = np.nan
    sf.write(str(src / "bad" / "nan.wav"), nan, 16000, subtype="FLOAT")
    wav = encoded(500, "WAV", seconds=1.0)
    (src / "bad" / "truncated.wav").write_bytes(wav[: len(wav) // 2])
    flac = encoded(600, "FLAC", seconds=1.0)
    (src / "bad" / "truncated.flac").write_bytes(flac[: len(flac) // 2])
    sf.write(str(src / "bad" / "silence.wav"), np.zeros(16000, np.float32), 16000)
    tone(src / "bad" / "blip.wav", 800, seconds=0.01)
    return src


def test_broken_files_are_skipped_with_their_reasons(broken_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    report = build_dataset([broken_folder], out, config=tiny())
    reasons = {Path(s.source_file).name: s.reason for s in report.skipped}
    assert reasons == {
        "empty.wav": "empty", "corrupt.ogg": "corrupt", "noise.mp3": "corrupt", "nan.wav": "invalid",
        "truncated.wav": "truncated", "truncated.flac": "truncated", "silence.wav": "silent", "blip.wav": "too_short",
        "dangling.wav": "corrupt",
    }
    assert all(s.detail for s in report.skipped)
    clips = all_clips(out)
    assert sorted(Path(c.source_file).name for c in clips) == ["bell.wav", "horn.flac"]
    saved = json.loads((out / "report.json").read_text())
    assert {Path(s["source_file"]).name: s["reason"] for s in saved["skipped"]} == reasons
    assert saved["totals"]["clips"] == 2 and saved["totals"]["files"] == 10
    md = (out / "report.md").read_text()
    assert "truncated.flac" in md and "## Sources" in md


def test_clips_are_pcm16_mono_at_target_rate_and_named_by_content(tmp_path: Path) -> None:
    src = tmp_path / "src"
    tone(src / "stereo.wav", 440, seconds=1.0, sr=44100, channels=2)
    report = build_dataset([src], tmp_path / "ds", config=tiny(sample_rate=16000))
    (clip,) = all_clips(tmp_path / "ds")
    info = sf.info(str(clip.path(tmp_path / "ds")))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert clip.location == f"audio/{clip.id[:2]}/{clip.id}.wav"
    pcm, _ = sf.read(str(clip.path(tmp_path / "ds")), dtype="int16")
    assert clip.id == hashlib.sha256(pcm.astype("<i2").tobytes() + struct.pack("<I", 16000)).hexdigest()[:20]
    assert clip.duration == pytest.approx(1.0, abs=0.03) and clip.sample_rate == 16000
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    assert np.argmax(spectrum) * 16000 / len(pcm) == pytest.approx(440, abs=3)
    assert report.audio_seconds == pytest.approx(1.0, abs=0.01)


def test_silence_is_trimmed_and_long_files_sliced(tmp_path: Path) -> None:
    sr = 16000
    x = np.zeros(sr * 7, np.float32)
    x[sr : sr * 6] = 0.5 * np.sin(2 * np.pi * 330 * np.arange(sr * 5) / sr)  # 1 s silence, 5 s tone, 1 s silence
    (tmp_path / "src").mkdir()
    sf.write(str(tmp_path / "src" / "long.wav"), x, sr)
    build_dataset([tmp_path / "src"], tmp_path / "ds", config=tiny(max_duration=2.0))
    clips = all_clips(tmp_path / "ds")
    assert len(clips) == 3  # ceil(5.04 / 2) equal pieces, no tiny tail
    assert all(1.5 < c.duration <= 2.0 for c in clips)
    assert sum(c.duration for c in clips) == pytest.approx(5.04, abs=0.03)  # trimming keeps 20 ms pads
    assert len({c.split for c in clips}) == 1


def test_identical_audio_is_kept_once(tmp_path: Path) -> None:
    src = tmp_path / "src"
    tone(src / "a" / "boom.wav", 440)
    tone(src / "b" / "boom_copy.wav", 440)
    tone(src / "b" / "other.wav", 550)
    report = build_dataset([src], tmp_path / "ds", config=tiny())
    clips = all_clips(tmp_path / "ds")
    assert len(clips) == 2 and len({c.id for c in clips}) == 2
    assert report.duplicates == 1
    dup = json.loads((tmp_path / "ds" / "report.json").read_text())["duplicates"][0]
    assert dup["source_file"].endswith("boom_copy.wav") and dup["duplicate_of"].endswith("a/boom.wav")


def test_split_is_by_source_file_with_no_leak(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(24):
        tone(src / f"s{i:02d}.wav", 200 + 37 * i, seconds=1.0, sr=8000)
    build_dataset([src], tmp_path / "ds", config=tiny(max_duration=0.4, split_fractions=(0.5, 0.25, 0.25)))
    clips = all_clips(tmp_path / "ds")
    splits_of_file: dict[str, set[str]] = {}
    for c in clips:
        splits_of_file.setdefault(c.source_file, set()).add(c.split)
    assert len(splits_of_file) == 24 and all(len(s) == 1 for s in splits_of_file.values())
    assert Counter(c.source_file for c in clips).most_common(1)[0][1] == 3  # each file gave 3 segments
    assert {c.split for c in clips} == set(SPLITS)
    for split in SPLITS:
        assert all(c.split == split for c in read_manifest(tmp_path / "ds", split))


def test_split_of_is_deterministic_and_follows_the_fractions() -> None:
    keys = [f"src/file{i}.wav" for i in range(4000)]
    first = [split_of(k, (0.8, 0.1, 0.1)) for k in keys]
    assert first == [split_of(k, (0.8, 0.1, 0.1)) for k in keys]
    counts = Counter(first)
    assert abs(counts["train"] / 4000 - 0.8) < 0.03 and abs(counts["test"] / 4000 - 0.1) < 0.03
    assert {split_of(k, (1.0, 0.0, 0.0)) for k in keys} == {"train"}


def test_incremental_rebuild_redoes_nothing_and_picks_up_changes(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "ds"
    for i in range(3):
        tone(src / f"t{i}.wav", 300 + 100 * i)
    (src / "broken.wav").write_bytes(b"RIFF" + os.urandom(100))
    first = build_dataset([src], out, config=tiny())
    assert (first.processed, first.cached) == (4, 0)
    manifest = (out / "train" / "manifest.jsonl").read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")}
    again = build_dataset([src], out, config=tiny())
    assert (again.processed, again.cached, again.audio_seconds) == (0, 4, 0.0)
    assert [s.reason for s in again.skipped] == ["corrupt"]
    assert (out / "train" / "manifest.jsonl").read_bytes() == manifest
    assert {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")} == stamps

    tone(src / "new.wav", 900)
    old_id = next(c.id for c in all_clips(out) if c.source_file.endswith("t0.wav"))
    tone(src / "t0.wav", 1200)  # changed content (and size/mtime)
    os.utime(src / "t0.wav", ns=(1, 1))
    third = build_dataset([src], out, config=tiny())
    assert third.processed == 2 and third.cached == 3
    clips = all_clips(out)
    assert len(clips) == 4 and old_id not in {c.id for c in clips}
    assert not (out / f"audio/{old_id[:2]}/{old_id}.wav").exists()  # the stale clip is removed

    rate = build_dataset([src], out, config=tiny(sample_rate=8000))  # new settings: everything redone
    assert rate.processed == 5 and {c.sample_rate for c in all_clips(out)} == {8000}


def test_archives_are_read_without_unpacking(tmp_path: Path) -> None:
    pk3 = tmp_path / "game.pk3"
    with zipfile.ZipFile(pk3, "w") as z:
        z.writestr("sound/weapons/rocketFire.ogg", encoded(440, "OGG"))
        z.writestr("sound/weapons/rocketFire.txt", "a rocket launcher fires")
        z.writestr("sound/world/door_open2.wav", encoded(300, "WAV"))
        z.writestr("sound/world/broken.wav", b"RIFF....WAVEjunk")
        z.writestr("readme.txt", "not audio")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "bad.zip").write_bytes(b"PK not really a zip")
    report = build_dataset([pk3, tmp_path / "folder"], tmp_path / "ds", config=tiny())
    clips = {c.source_file.split("::")[1]: c for c in all_clips(tmp_path / "ds")}
    assert set(clips) == {"sound/weapons/rocketFire.ogg", "sound/world/door_open2.wav"}
    assert clips["sound/weapons/rocketFire.ogg"].caption == "a rocket launcher fires"
    assert clips["sound/world/door_open2.wav"].caption == "world door open"
    assert all(c.source == "game" and c.source_file.startswith(str(pk3) + "::") for c in clips.values())
    assert sorted(s.reason for s in report.skipped) == ["corrupt", "corrupt"]
    assert not list(tmp_path.glob("**/rocketFire.ogg"))


def test_parallel_build_equals_serial_build(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(6):
        tone(src / f"p{i}.flac", 250 + 50 * i, seconds=0.6)
    (src / "z_broken.wav").write_bytes(b"garbage" * 50)
    serial = build_dataset([src], tmp_path / "one", config=tiny())
    parallel = build_dataset([src], tmp_path / "two", config=tiny(workers=2))
    assert parallel.processed == serial.processed == 7
    for split in SPLITS:
        assert [c.id for c in read_manifest(tmp_path / "one", split)] == [
            c.id for c in read_manifest(tmp_path / "two", split)
        ]


def test_bad_sources_and_settings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="does not exist"):
        build_dataset([tmp_path / "nope"], tmp_path / "ds")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataSourceError, match="not a folder"):
        build_dataset([tmp_path / "notes.txt"], tmp_path / "ds")
    with pytest.raises(ConfigError, match="split fractions"):
        build_dataset([tmp_path], tmp_path / "ds", split_fractions=(0.5, 0.1, 0.1))
    with pytest.raises(DataSourceError, match="no sources"):
        build_dataset([], tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_output_folder_inside_a_source_is_not_scanned(tmp_path: Path) -> None:
    tone(tmp_path / "a.wav", 440)
    build_dataset([tmp_path], tmp_path / "ds", config=tiny())
    again = build_dataset([tmp_path], tmp_path / "ds", config=tiny())
    assert again.files == 1 and len(all_clips(tmp_path / "ds")) == 1


def test_declared_frames_reads_headers() -> None:
    wav = encoded(440, "WAV", seconds=1.0, sr=8000)
    flac = encoded(440, "FLAC", seconds=1.0, sr=8000)
    assert declared_frames(wav) == 8000 and declared_frames(flac) == 8000
    assert declared_frames(b"nothing") is None


def crash_on_some(item: SourceItem, settings: ProcessSettings, out_dir: str) -> ItemResult:
    """A worker that dies like a segfaulting decoder on files named crash*.wav."""
    if Path(item.path).name.startswith("crash"):
        os._exit(3)
    return process_item(item, settings, out_dir)


def test_a_worker_that_dies_skips_only_its_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(5):
        tone(src / f"ok{i}.wav", 300 + 40 * i, seconds=0.2)
    tone(src / "crash.wav", 900, seconds=0.2)
    items, _ = scan_sources([src])
    settings = BuildConfig.tiny().process_settings()
    results = list(execute_pool(items, settings, tmp_path / "ds", 2, fn=crash_on_some, context="fork"))
    by_name = {Path(r.source_file).name: r for r in results}
    assert len(results) == 6 and len(by_name) == 6
    assert (by_name["crash.wav"].status, by_name["crash.wav"].reason) == ("skipped", "error")
    assert "crashed" in by_name["crash.wav"].detail
    assert all(r.status == "ok" for n, r in by_name.items() if n != "crash.wav")


def test_a_second_build_into_the_same_folder_is_refused_while_one_runs(tmp_path: Path) -> None:
    import fcntl

    tone(tmp_path / "src" / "a.wav", 440)
    lock = tmp_path / "ds" / ".cache" / "lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(DataSourceError, match="another 'soundgen data build'"):
            build_dataset([tmp_path / "src"], tmp_path / "ds", config=tiny())
    assert build_dataset([tmp_path / "src"], tmp_path / "ds", config=tiny()).total_clips == 1
