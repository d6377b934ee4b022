"""``soundgen codec encode/decode``: round trips through real files, clear one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from soundgen.audio.io import read_audio
from soundgen.cli.main import main
from soundgen.codec import CodecConfig, build_codec
from soundgen.codec.io import load_codec, save_codec
from soundgen.codec.sgc.container import read_sgc


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_codec(build_codec(CodecConfig.tiny()), tmp_path / "model", model_id="tiny-test")


def _stereo_44k(path: Path, signal: Callable[..., np.ndarray], seconds: float = 0.7) -> Path:
    left, right = signal(seconds, 44100, seed=1), signal(seconds, 44100, seed=2)
    sf.write(path, np.stack([left, right], axis=1), 44100)
    return path


def test_encode_decode_round_trip(
    model_dir: Path, tmp_path: Path, signal: Callable[..., np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    src = _stereo_44k(tmp_path / "in.wav", signal)
    sgc, out = tmp_path / "x.sgc", tmp_path / "out.wav"
    assert main(["codec", "encode", str(src), str(sgc), "--bitrate", "5", "--model", str(model_dir)]) == 0
    assert "kbps" in capsys.readouterr().out
    f = read_sgc(sgc)
    assert f.header.n_codebooks == 2 and f.header.model_id == "tiny-test"
    assert f.header.length == round(0.7 * 8000) and f.header.original_channels == 2

    codec = load_codec(model_dir)
    codec.set_n_codebooks(2)
    mono = read_audio(src, sample_rate=8000, channels=1).samples
    expected_codes = codec.encode(torch.from_numpy(mono)[None])[0].numpy()
    assert np.array_equal(f.codes, expected_codes)  # file codes == offline Python API codes

    assert main(["codec", "decode", str(sgc), str(out), "--model", str(model_dir)]) == 0
    wav, rate = sf.read(out, always_2d=True)
    assert rate == 8000 and wav.shape == (f.header.length, 1)
    expected = codec.decode(torch.from_numpy(expected_codes)[None])[0, 0, : f.header.length].clamp(-1, 1).numpy()
    assert np.abs(wav[:, 0] - expected).max() < 2e-4  # PCM16 rounding only

    assert (
        main(
            ["codec", "decode", str(sgc), str(tmp_path / "o.flac"), "--model", str(model_dir), "--sample-rate", "16000"]
        )
        == 0
    )
    assert sf.info(str(tmp_path / "o.flac")).samplerate == 16000


def test_bad_input_gives_one_line_error(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    assert main(["codec", "encode", str(bad), str(tmp_path / "o.sgc"), "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("soundgen: error:") and "\n" not in err
    assert not (tmp_path / "o.sgc").exists()

    assert main(["codec", "decode", str(bad), str(tmp_path / "o.wav"), "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a .sgc file" in err and "\n" not in err
    assert not (tmp_path / "o.wav").exists()


def test_corrupt_sgc_leaves_no_output(
    model_dir: Path, tmp_path: Path, signal: Callable[..., np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    src = _stereo_44k(tmp_path / "in.wav", signal, seconds=3.0)
    sgc = tmp_path / "x.sgc"
    assert main(["codec", "encode", str(src), str(sgc), "--model", str(model_dir)]) == 0
    data = bytearray(sgc.read_bytes())
    data[-40] ^= 0xFF  # inside the last chunk: detected only after earlier chunks were decoded
    sgc.write_bytes(bytes(data))
    out = tmp_path / "out.wav"
    assert main(["codec", "decode", str(sgc), str(out), "--model", str(model_dir)]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert list(tmp_path.glob("*.wav")) == [src]  # no partial or temporary output left behind


def test_decode_to_ogg_streams_and_a_late_failure_leaves_nothing(
    model_dir: Path, tmp_path: Path, signal: Callable[..., np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    src = _stereo_44k(tmp_path / "in.wav", signal, seconds=3.0)
    sgc = tmp_path / "x.sgc"
    assert main(["codec", "encode", str(src), str(sgc), "--model", str(model_dir)]) == 0
    header = read_sgc(sgc).header
    assert main(["codec", "decode", str(sgc), str(tmp_path / "out.ogg"), "--model", str(model_dir)]) == 0
    info = sf.info(str(tmp_path / "out.ogg"))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("OGG", "VORBIS", 8000, 1)
    assert info.frames == header.length  # every decoded sample, written chunk by chunk
    assert main(["codec", "decode", str(sgc), str(tmp_path / "out.wav"), "--model", str(model_dir)]) == 0
    vorbis, _ = sf.read(tmp_path / "out.ogg")
    pcm, _ = sf.read(tmp_path / "out.wav")
    assert np.corrcoef(vorbis, pcm)[0, 1] > 0.9  # the same sound, through a lossy format

    data = bytearray(sgc.read_bytes())
    data[-40] ^= 0xFF  # inside the last chunk: found after earlier chunks were decoded and written
    sgc.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["codec", "decode", str(sgc), str(tmp_path / "bad.ogg"), "--model", str(model_dir)]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.glob("*.ogg")) == ["out.ogg"]  # no partial or temporary file
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_an_unwritable_output_is_refused_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    src = tmp_path / ("a.wav" if command == "encode" else "a.sgc")
    src.write_bytes(b"not read: the output is checked first")
    (tmp_path / "file").write_text("x")
    suffix = ".sgc" if command == "encode" else ".wav"
    for out in (tmp_path / "file" / f"o{suffix}", tmp_path / "file" / "missing" / f"o{suffix}"):
        # no model at --model: the output is refused before the model would load
        assert main(["codec", command, str(src), str(out), "--model", str(tmp_path / "none")]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"soundgen: error: cannot write {out}: {tmp_path / 'file'} is a file, not a folder"


def test_decode_refuses_other_weights(
    model_dir: Path, tmp_path: Path, signal: Callable[..., np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    src = _stereo_44k(tmp_path / "in.wav", signal)
    sgc = tmp_path / "x.sgc"
    assert main(["codec", "encode", str(src), str(sgc), "--model", str(model_dir)]) == 0
    torch.manual_seed(1)
    other = save_codec(build_codec(CodecConfig.tiny()), tmp_path / "other")
    assert main(["codec", "decode", str(sgc), str(tmp_path / "o.wav"), "--model", str(other)]) == 2
    assert "not by the loaded codec" in capsys.readouterr().err


def test_missing_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sf.write(tmp_path / "a.wav", np.zeros(800), 8000)
    assert (
        main(["codec", "encode", str(tmp_path / "a.wav"), str(tmp_path / "a.sgc"), "--model", str(tmp_path / "none")])
        == 2
    )
    assert "no codec model" in capsys.readouterr().err


def test_cli_subprocess_round_trip(model_dir: Path, tmp_path: Path, signal: Callable[..., np.ndarray]) -> None:
    src = tmp_path / "in.flac"
    sf.write(src, signal(0.3, 22050), 22050)
    sgc, out = tmp_path / "x.sgc", tmp_path / "out.wav"
    for args in (["encode", str(src), str(sgc)], ["decode", str(sgc), str(out)]):
        proc = subprocess.run(
            [sys.executable, "-m", "soundgen", "codec", *args, "--model", str(model_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
    assert sf.info(str(out)).frames == round(0.3 * 8000)


def test_without_model_uses_the_default_model_or_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The codec of the default model, found as `soundgen generate` finds it: $SOUNDGEN_MODEL here.
    monkeypatch.setenv("SOUNDGEN_MODEL", str(tmp_path / "model"))
    sf.write(tmp_path / "a.wav", np.zeros(800), 8000)
    assert main(["codec", "encode", str(tmp_path / "a.wav"), str(tmp_path / "a.sgc")]) == 2
    err = capsys.readouterr().err
    assert "no model is installed" in err and "SOUNDGEN_MODEL" in err and "soundgen codec export" in err
    torch.manual_seed(0)
    save_codec(build_codec(CodecConfig.tiny()), tmp_path / "model" / "codec")
    assert main(["codec", "encode", str(tmp_path / "a.wav"), str(tmp_path / "a.sgc")]) == 0
    assert main(["codec", "decode", str(tmp_path / "a.sgc"), str(tmp_path / "b.wav")]) == 0


def test_nan_input_and_unknown_output_format(
    model_dir: Path, tmp_path: Path, signal: Callable[..., np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    x = signal(0.2, 8000)
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, 8000, subtype="FLOAT")
    assert main(["codec", "encode", str(tmp_path / "nan.wav"), str(tmp_path / "n.sgc"), "--model", str(model_dir)]) == 2
    assert "NaN" in capsys.readouterr().err and not (tmp_path / "n.sgc").exists()

    sf.write(tmp_path / "ok.wav", signal(0.2, 8000), 8000)
    assert main(["codec", "encode", str(tmp_path / "ok.wav"), str(tmp_path / "ok.sgc"), "--model", str(model_dir)]) == 0
    assert main(["codec", "decode", str(tmp_path / "ok.sgc"), str(tmp_path / "o.xyz"), "--model", str(model_dir)]) == 2
    assert "suffix" in capsys.readouterr().err and not (tmp_path / "o.xyz").exists()


@pytest.mark.parametrize("command", ["encode", "decode"])
@pytest.mark.parametrize("alias", ["same", "dotdot", "symlink", "hardlink"])
def test_an_output_that_is_the_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, alias: str
) -> None:
    src = tmp_path / "sub" / "a.wav"
    src.parent.mkdir()
    sf.write(src, np.zeros(800, np.float32), 8000)
    before = src.read_bytes()
    out = {"same": src, "dotdot": tmp_path / "sub" / ".." / "sub" / "a.wav", "symlink": tmp_path / "link.wav",
           "hardlink": tmp_path / "hard.wav"}[alias]
    if alias == "symlink":
        out.symlink_to(src)
    if alias == "hardlink":
        os.link(src, out)
    code = main(["codec", command, str(src), str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "is the input file itself" in err
    assert src.read_bytes() == before
