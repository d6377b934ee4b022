"""soundgen.audio.io: every format decodes, conversions keep what they must, bad files fail clearly."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundgen.audio import io as aio
from soundgen.audio.archive import list_archive, read_member
from soundgen.errors import AudioReadError, AudioWriteError, InvalidAudioError

SR = 16000


def sine(freq: float = 440.0, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None]


def dominant_frequency(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x[0] * np.hanning(x.shape[1])))
    return float(np.argmax(spectrum) * sr / x.shape[1])


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "opus", "mp3"])
def test_each_format_round_trips(tmp_path: Path, fmt: str) -> None:
    x = sine(440, 1.0)
    path = aio.write_audio(tmp_path / f"tone.{fmt}", x, SR)
    audio = aio.read_audio(path, sample_rate=SR, channels=1)
    assert audio.sample_rate == SR
    assert audio.samples.dtype == np.float32 and audio.samples.shape[0] == 1
    # lossy codecs add delay/padding, but never change the length by more than ~0.1 s or the pitch
    assert abs(audio.samples.shape[1] - SR) < 0.12 * SR
    assert abs(dominant_frequency(audio.samples, SR) - 440) < 5


def test_bytes_and_archive_members(tmp_path: Path) -> None:
    data = aio.encode_audio_bytes(sine(1000), SR, "ogg")
    assert abs(dominant_frequency(aio.read_audio(data, name="x.ogg").samples, SR) - 1000) < 5
    pk3 = tmp_path / "game.pk3"
    with zipfile.ZipFile(pk3, "w") as zf:
        zf.writestr("sound/boom.ogg", data)
        zf.writestr("readme.txt", "hello")
    assert list_archive(pk3) == ["sound/boom.ogg", "readme.txt"]
    assert read_member(pk3, "sound/boom.ogg") == data
    audio = aio.read_audio(f"{pk3}::sound/boom.ogg")
    assert abs(dominant_frequency(audio.samples, SR) - 1000) < 5
    with pytest.raises(AudioReadError, match="no member"):
        aio.read_audio(f"{pk3}::sound/missing.ogg")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_wavpack_through_ffmpeg(tmp_path: Path) -> None:
    wav = aio.write_audio(tmp_path / "a.wav", sine(440, 1.0, 22050), 22050)
    wv = tmp_path / "a.wv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "wavpack", str(wv)], check=True)
    audio = aio.read_audio(wv, sample_rate=SR)
    assert audio.sample_rate == SR and abs(audio.samples.shape[1] - SR) <= 2
    assert abs(dominant_frequency(audio.samples, SR) - 440) < 5


def test_missing_decoder_names_file_and_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    odd = tmp_path / "strange.wv"
    odd.write_bytes(b"wvpk" + bytes(200))
    monkeypatch.setattr(aio, "ffmpeg_path", lambda: None)
    with pytest.raises(AudioReadError, match=r"strange\.wv.*apt-get install ffmpeg"):
        aio.read_audio(odd)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 4, "cannot decode"), (b"\x00" * 1000, "cannot")],
)
def test_corrupt_and_empty_files(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    with pytest.raises(AudioReadError, match=message):
        aio.read_audio(bad)


def test_truncated_wav_reads_what_is_there_or_fails_cleanly(tmp_path: Path) -> None:
    good = aio.write_audio(tmp_path / "good.wav", sine(seconds=1.0), SR)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[:30])  # header cut in the middle
    with pytest.raises(AudioReadError):
        aio.read_audio(cut)


def test_nan_and_zero_length(tmp_path: Path) -> None:
    x = sine()
    x[0, 100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x.T, SR, subtype="FLOAT")
    with pytest.raises(InvalidAudioError, match="NaN"):
        aio.read_audio(path)
    empty = tmp_path / "zero.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), SR)
    with pytest.raises(AudioReadError, match="zero length"):
        aio.read_audio(empty)


def test_max_duration_refuses_before_decoding(tmp_path: Path) -> None:
    path = aio.write_audio(tmp_path / "long.wav", sine(seconds=3.0), SR)
    with pytest.raises(AudioReadError, match="limit"):
        aio.read_audio(path, max_duration=2.0)


@pytest.mark.parametrize(("sr_in", "sr_out"), [(44100, 16000), (16000, 48000), (22050, 24000)])
def test_resampled_sine_keeps_frequency(sr_in: int, sr_out: int) -> None:
    y = aio.resample(sine(1234.0, 2.0, sr_in), sr_in, sr_out)
    assert abs(y.shape[1] - 2 * sr_out) <= 1
    assert abs(dominant_frequency(y, sr_out) - 1234.0) < 2


def test_channels() -> None:
    stereo = np.stack([np.ones(10, np.float32), -np.ones(10, np.float32) * 0.5])
    assert np.allclose(aio.to_channels(stereo, 1), 0.25)
    assert aio.to_channels(stereo[:1], 2).shape == (2, 10)
    assert aio.to_channels(np.zeros((6, 4), np.float32), 2).shape == (2, 4)


def test_normalisation_and_trim() -> None:
    x = sine(997, 3.0, 48000, amp=0.1)
    assert np.max(np.abs(aio.peak_normalize(x, -1.0))) == pytest.approx(10 ** (-1 / 20), rel=1e-4)
    # a full-scale 997 Hz sine measures -3.01 LUFS by definition of BS.1770
    assert aio.loudness(sine(997, 3.0, 48000, amp=1.0), 48000) == pytest.approx(-3.01, abs=0.1)
    y = aio.loudness_normalize(x, 48000, target_lufs=-20.0)
    assert aio.loudness(y, 48000) == pytest.approx(-20.0, abs=0.2)
    padded = np.concatenate([np.zeros((1, SR), np.float32), sine(seconds=0.5), np.zeros((1, SR), np.float32)], 1)
    trimmed = aio.trim_silence(padded, SR)
    assert 0.5 * SR <= trimmed.shape[1] <= 0.5 * SR + 0.05 * SR
    assert aio.trim_silence(np.zeros((1, SR), np.float32), SR).shape[1] == 0


def test_write_errors_leave_nothing(tmp_path: Path) -> None:
    with pytest.raises(AudioWriteError, match="suffix"):
        aio.write_audio(tmp_path / "x.xyz", sine(), SR)
    bad = sine()
    bad[0, 0] = np.inf
    with pytest.raises(InvalidAudioError):
        aio.write_audio(tmp_path / "x.wav", bad, SR)
    assert list(tmp_path.iterdir()) == []


def test_long_ogg_is_written_in_blocks(tmp_path: Path) -> None:
    # libsndfile 1.2.2 crashes on ~40 s of Vorbis in one write call; soundgen writes in blocks
    x = sine(440, 60.0, SR, amp=0.3)
    path = aio.write_audio(tmp_path / "long.ogg", x, SR)
    assert abs(aio.read_audio(path).duration - 60.0) < 0.1
    assert len(aio.encode_audio_bytes(x, SR, "ogg")) > 10_000
