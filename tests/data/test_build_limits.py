"""The builder's limits: no hanging on special files, no inflating zip bombs, memory that follows the output."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundgen.audio.archive import MAX_COMPRESSION_RATIO, member_problem
from soundgen.data.build import BuildConfig, build_dataset

RSS_PROBE = """
import json, sys
from pathlib import Path
from soundgen.data.build import BuildConfig
from soundgen.data.build_worker import process_item, scan_sources

def status_kb(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field + ":"))
    return int(line.split()[1])

settings = BuildConfig(max_file_duration=8000.0).process_settings()
warm, big = (scan_sources([Path(p)])[0][0] for p in sys.argv[1:3])
process_item(warm, settings, sys.argv[3])  # decoders and resampler loaded, first allocations made
open("/proc/self/clear_refs", "w").write("5")  # peak RSS (VmHWM) := current RSS
before = status_kb("VmRSS")
result = process_item(big, settings, sys.argv[3])
print(json.dumps({"status": result.status, "detail": result.detail, "clips": len(result.segments),
                  "peak_growth_mb": (status_kb("VmHWM") - before) / 1024}))
"""


def long_tone(path: Path, seconds: float, sr: int = 48000, channels: int = 2) -> Path:
    """A long stereo tone, written a block at a time (the test itself never holds it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = 1 << 16
    t = np.arange(block) / sr
    with sf.SoundFile(str(path), "w", sr, channels, subtype="PCM_16") as f:
        for start in range(0, int(seconds * sr), block):
            x = (0.3 * np.sin(2 * np.pi * (220 + start % 7) * (t + start / sr))).astype(np.float32)
            f.write(np.repeat(x[:, None], channels, axis=1))
    return path


def zero_wav_member(zf: zipfile.ZipFile, name: str, nbytes: int) -> None:
    """A WAV member of ``nbytes`` of digital silence, deflated (a zip bomb in miniature)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as f:
        f.write(b"RIFF" + (nbytes + 36).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little"))
        f.write((1).to_bytes(2, "little") * 2 + (16000).to_bytes(4, "little") + (32000).to_bytes(4, "little"))
        f.write((2).to_bytes(2, "little") + (16).to_bytes(2, "little") + b"data" + nbytes.to_bytes(4, "little"))
        zeros = bytes(1 << 20)
        for _ in range(nbytes >> 20):
            f.write(zeros)


def run_cli_build(src: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "soundgen", "-q", "data", "build", str(src), "--out", str(out), "--workers", "1"],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "SOUNDGEN_NO_PROGRESS": "1"},
    )


@pytest.mark.skipif(not Path("/dev/zero").exists() or not hasattr(os, "mkfifo"), reason="needs /dev/zero and FIFOs")
def test_fifos_and_devices_are_skipped_not_read(tmp_path: Path) -> None:
    src = tmp_path / "src"
    long_tone(src / "good.wav", 0.3, sr=16000, channels=1)
    os.mkfifo(src / "pipe.wav")  # opening it for reading would wait forever for a writer
    (src / "zero.wav").symlink_to("/dev/zero")  # reading it would never end
    os.mkfifo(src / "pipe.zip")
    proc = run_cli_build(src, tmp_path / "ds")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "ds" / "report.json").read_text())
    skipped = {Path(s["source_file"]).name: (s["reason"], s["detail"]) for s in report["skipped"]}
    assert {k: v[0] for k, v in skipped.items()} == {"pipe.wav": "not_a_file", "zero.wav": "not_a_file",
                                                      "pipe.zip": "not_a_file"}
    assert "a FIFO" in skipped["pipe.wav"][1] and "a character device" in skipped["zero.wav"][1]
    assert report["totals"]["clips"] == 1


def test_a_zip_bomb_member_is_refused_without_inflating_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with zipfile.ZipFile(src / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zero_wav_member(zf, "quiet.wav", 64 << 20)
        zf.writestr("real.wav", _tone_bytes())
    info = zipfile.ZipFile(src / "bomb.zip").getinfo("quiet.wav")
    assert info.file_size > MAX_COMPRESSION_RATIO * info.compress_size
    assert "zip bomb" in (member_problem(info) or "")
    report = build_dataset([src], tmp_path / "ds", config=BuildConfig.tiny())
    assert [(Path(s.source_file).name, s.reason) for s in report.skipped] == [("bomb.zip::quiet.wav", "too_large")]
    assert report.total_clips == 1


def _tone_bytes(freq: float = 330.0) -> bytes:
    buf = io.BytesIO()
    t = np.arange(8000) / 16000
    sf.write(buf, (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000, format="WAV")
    return buf.getvalue()


@pytest.mark.parametrize("in_zip", [False, True], ids=["file", "zip-member"])
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads peak RSS from /proc (Linux)")
def test_decoding_memory_follows_the_output_not_the_input(tmp_path: Path, in_zip: bool) -> None:
    # 150 s of 48 kHz stereo: 29 MB of PCM16, 58 MB as float32 at its own rate, 9.6 MB as 16 kHz mono float32.
    big = long_tone(tmp_path / "src" / "big.wav", 150.0)
    warm = long_tone(tmp_path / "warm" / "warm.wav", 1.0)
    if in_zip:
        with zipfile.ZipFile(tmp_path / "big.zip", "w", zipfile.ZIP_STORED) as zf:
            zf.write(big, "big.wav")
        big = tmp_path / "big.zip"
    proc = subprocess.run([sys.executable, "-c", RSS_PROBE, str(warm), str(big), str(tmp_path / "ds")],
                          capture_output=True, text=True, timeout=300, check=True)
    probe = json.loads(proc.stdout)
    assert probe["status"] == "ok" and probe["clips"] == 6, probe  # 150.1 s in 30 s slices
    # Whole-file decoding peaked 137 MB above the warm process (bytes + float32 + mono + trim copies); in blocks
    # it takes 13.5 MB (the 9.6 MB of output and a slice).
    assert probe["peak_growth_mb"] < 30, probe


def tone_at(path: bytes | Path, freq: float) -> None:
    """A short tone written under a name that may hold any bytes."""
    with open(path, "wb") as f:
        f.write(_tone_bytes(freq))


def test_names_that_are_not_utf8_are_skipped_not_fatal(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "ok").mkdir(parents=True)
    tone_at(src / "ok" / "bell.wav", 330)
    root = os.fsencode(src)
    tone_at(root + b"/bad\xff.wav", 440)
    os.mkdir(root + b"/dir\xfe")
    tone_at(root + b"/dir\xfe/inside.wav", 550)
    proc = run_cli_build(src, tmp_path / "ds")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "ds" / "report.json").read_text())
    assert report["totals"]["clips"] == 1
    assert {(Path(s["source_file"]).name, s["reason"]) for s in report["skipped"]} == {
        ("bad\\xff.wav", "bad_name"), ("dir\\xfe", "bad_name"),
    }
    assert "bad\\xff.wav" in (tmp_path / "ds" / "report.md").read_text()


@pytest.mark.parametrize("how", ["dotdot", "symlink"])
def test_an_out_folder_inside_the_source_by_another_name_is_not_scanned(tmp_path: Path, how: str) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    tone_at(src / "a.wav", 330)
    if how == "dotdot":
        out = src / "sub" / ".." / "ds"
    else:
        (tmp_path / "alias").symlink_to(src)
        out = tmp_path / "alias" / "ds"
    first = build_dataset([src], out, config=BuildConfig.tiny())
    again = build_dataset([src], out, config=BuildConfig.tiny())
    assert (first.files, again.files, again.total_clips, again.duplicates) == (1, 1, 1, 0)


def permissions_bind(tmp_path: Path) -> bool:
    """Whether this process is kept out of a file it may not read (root, unless its DAC capabilities are off)."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    probe.chmod(0)
    try:
        probe.read_bytes()
    except PermissionError:
        return True
    finally:
        probe.unlink()
    return False


def test_an_unreadable_file_is_retried_once_readable_and_an_unreadable_folder_is_reported(tmp_path: Path) -> None:
    if not permissions_bind(tmp_path):
        pytest.skip("this process reads files whatever their permissions (root)")
    src = tmp_path / "src"
    (src / "locked").mkdir(parents=True)
    tone_at(src / "a.wav", 330)
    tone_at(src / "locked" / "b.wav", 440)
    (src / "a.wav").chmod(0)
    (src / "locked").chmod(0)
    try:
        first = build_dataset([src], tmp_path / "ds", config=BuildConfig.tiny())
    finally:
        (src / "a.wav").chmod(0o644)
        (src / "locked").chmod(0o755)
    assert sorted((Path(s.source_file).name, s.reason) for s in first.skipped) == [
        ("a.wav", "unreadable"), ("locked", "unreadable"),
    ]
    again = build_dataset([src], tmp_path / "ds", config=BuildConfig.tiny())
    assert again.total_clips == 2 and not again.skipped


def test_a_build_whose_clips_cannot_be_written_fails_and_a_rerun_redoes_them(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    tone_at(src / "a.wav", 330)
    tone_at(src / "b.wav", 440)
    out = tmp_path / "ds"
    out.mkdir()
    (out / "audio").write_bytes(b"")  # a file where the clip folders go: every write fails, root or not
    proc = run_cli_build(src, out)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "2 of 2 files could not be written" in lines[0]
    (out / "audio").unlink()
    assert build_dataset([src], out, config=BuildConfig.tiny()).total_clips == 2


def test_an_os_error_is_a_one_line_error_not_an_internal_one(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    tone_at(src / "a.wav", 330)
    (tmp_path / "file").write_bytes(b"")
    proc = run_cli_build(src, tmp_path / "file" / "ds")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("soundgen: error: ") and "internal error" not in lines[0] and "file" in lines[0]
