"""The CLI end to end: tokenize, train, export, generate (in-process and as a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from soundgen.cli.main import main


@pytest.fixture(scope="module")
def model_dir(assets: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    tokens = root / "tokens"
    assert (
        main(
            [
                "data",
                "tokenize",
                str(assets.dataset),
                "--codec",
                str(assets.codec_dir),
                "--out",
                str(tokens),
                "--n-codebooks",
                "2",
            ]
        )
        == 0
    )
    cfg = root / "tiny.yaml"
    cfg.write_text(
        "model:\n  n_codebooks: 2\n  d_model: 16\n  n_heads: 2\n  n_layers: 1\n  max_frames: 64\n"
        "  text: {kind: hashed, dim: 16, n_buckets: 256, n_heads: 2, max_tokens: 32}\n"
        "train: {batch_size: 2, segment_frames: 32, eval_every: 0, sample_every: 0, checkpoint_every: 2}\n"
    )
    assert (
        main(
            [
                "lm",
                "train",
                "--config",
                str(cfg),
                "--tokens",
                str(tokens),
                "--out",
                str(root / "run"),
                "--steps",
                "2",
                "--train.lr=3e-3",
            ]
        )
        == 0
    )
    out = root / "model"
    assert main(["lm", "export", str(root / "run"), "--codec", str(assets.codec_dir), "--out", str(out)]) == 0
    return out


def test_generate_writes_numbered_wavs_of_the_asked_duration(model_dir: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "boom.wav"
    code = main(
        ["generate", "a click sound", "-d", "0.1", "-n", "2", "--seed", "3", "--model", str(model_dir), "-o", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr()
    files = [tmp_path / "boom_1.wav", tmp_path / "boom_2.wav"]
    assert printed.out.split() == [str(f) for f in files]
    assert "seed 3" in printed.err
    for f in files:
        info = sf.info(f)
        assert info.samplerate == 8000 and info.frames == 800


def test_continue_from_audio_file(model_dir: Path, assets: Any, tmp_path: Path) -> None:
    clip = next((assets.dataset / "audio").rglob("*.wav"))  # 0.25 s
    out = tmp_path / "more.flac"
    assert (
        main(["generate", "a tone", "-d", "0.05", "--continue", str(clip), "--model", str(model_dir), "-o", str(out)])
        == 0
    )
    assert sf.info(out).frames == 2400  # 0.25 s of prompt + 0.05 s, at 8 kHz


@pytest.mark.parametrize(("prompt", "message"), [("  ", "prompt is empty"), ("word " * 300, "limit is")])
def test_bad_prompts_are_one_line_errors(
    model_dir: Path, tmp_path: Path, capsys: Any, prompt: str, message: str
) -> None:
    assert main(["generate", prompt, "--model", str(model_dir), "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.wav").exists()


def test_generate_with_a_negative_prompt(model_dir: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "neg.wav"
    args = ["generate", "a click sound", "-d", "0.05", "--seed", "1", "--model", str(model_dir), "-o", str(out)]
    assert main([*args, "--negative-prompt", "a low hum"]) == 0
    assert sf.info(out).frames == 400
    assert main([*args, "--negative-prompt", "word " * 300]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("soundgen: error: the negative prompt is ") and "limit is" in err


def test_an_unwritable_output_is_refused_before_generating(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "x.wav"
    # no model at --model: the output is refused before the model would load
    assert main(["generate", "a dog", "--model", str(tmp_path / "none"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"soundgen: error: cannot write {out}: {tmp_path / 'file'} is a file, not a folder\n"


def test_the_removed_int8_dtype_is_one_line_saying_why(tmp_path: Path, capsys: Any) -> None:
    assert main(["generate", "a dog", "--dtype", "int8", "--model", str(tmp_path), "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("soundgen: error: dtype int8 is no longer offered: its decoding steps were 1.6x slower")
    assert err.count("\n") == 1 and not (tmp_path / "x.wav").exists()


def test_no_model_installed_is_one_line(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOUNDGEN_MODEL", str(tmp_path / "nothing"))
    assert main(["generate", "a dog", "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert "no model is installed" in err and err.count("\n") == 1


def test_generate_subprocess(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub.wav"
    env = {**os.environ, "SOUNDGEN_MODEL": str(model_dir), "SOUNDGEN_NO_PROGRESS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "soundgen", "generate", "a noise sound", "-d", "0.04", "--threads", "1", "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sf.info(out).frames == 320


def test_a_long_continue_file_is_cropped_to_its_last_minute(model_dir: Path, tmp_path: Path, capsys: Any) -> None:
    import numpy as np

    clip = tmp_path / "long.wav"
    with sf.SoundFile(str(clip), "w", 8000, 1) as f:  # ten minutes; only the last one is decoded
        for i in range(10):
            f.write(np.full(8000 * 60, 0.01 * (i + 1), np.float32))
    out = tmp_path / "more.wav"
    assert main(["generate", "a tone", "-d", "0.05", "--continue", str(clip), "--model", str(model_dir),
                 "-o", str(out)]) == 0
    assert "using the last 60 s of" in capsys.readouterr().err
    assert sf.info(out).frames == round(60.05 * 8000)
