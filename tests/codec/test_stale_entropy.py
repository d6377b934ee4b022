"""Stale entropy tables: a codec directory whose ``entropy.safetensors`` was fitted for other weights (the codec was
re-exported after ``fit-entropy``) never has them used. ``codec encode`` warns and writes bit-packed files that
decode right; ``--entropy`` refuses in one line; ``eval codec`` says why its files are bit-packed."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from soundgen.cli.main import main
from soundgen.codec import CodecConfig, build_codec
from soundgen.codec.entropy import ENTROPY_FILE, StaleTablesError, has_stale_tables, load_tables
from soundgen.codec.io import load_codec, save_codec


@pytest.fixture
def re_exported(tmp_path: Path, tiny_dataset: Path, signal: Callable[..., np.ndarray]) -> tuple[Path, Path, Path]:
    """A model whose tables were fitted, a file they coded, then the model re-exported with other weights (the
    tables stay behind). Returns (model dir, the input wav, the old version-3 file)."""
    torch.manual_seed(0)
    model = save_codec(build_codec(CodecConfig.tiny()), tmp_path / "model", model_id="tiny")
    assert main(["codec", "fit-entropy", str(model), "--data", str(tiny_dataset), "--max-contexts", "4"]) == 0
    src = tmp_path / "in.wav"
    sf.write(src, signal(1.0, 8000), 8000)
    old = tmp_path / "old.sgc"
    assert main(["codec", "encode", str(src), str(old), "--model", str(model), "--bitrate", "10"]) == 0
    assert old.read_bytes()[4] == 3
    torch.manual_seed(1)
    save_codec(build_codec(CodecConfig.tiny()), model, model_id="tiny")  # the re-export: new weights, old tables
    assert (model / ENTROPY_FILE).is_file()
    return model, src, old


def test_stale_tables_are_ignored_with_a_warning_and_files_decode_right(
    re_exported: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    model, src, _ = re_exported
    codec = load_codec(model)
    assert has_stale_tables(model, codec.model_hash)
    with caplog.at_level(logging.WARNING):
        assert load_tables(model, codec.model_hash) is None
    assert "fitted for other codec weights" in caplog.text and codec.model_hash[:12] in caplog.text
    with pytest.raises(StaleTablesError, match="fit-entropy"):
        load_tables(model, codec.model_hash, strict=True)

    capsys.readouterr()
    new, plain = tmp_path / "new.sgc", tmp_path / "plain.sgc"
    assert main(["codec", "encode", str(src), str(new), "--model", str(model), "--bitrate", "10"]) == 0
    assert "bit-packed" in capsys.readouterr().out
    assert main(["codec", "encode", str(src), str(plain), "--model", str(model), "--bitrate", "10",
                 "--no-entropy"]) == 0
    assert new.read_bytes()[4] == 2 and new.read_bytes() == plain.read_bytes()  # what --no-entropy writes
    out = tmp_path / "new.wav"
    assert main(["codec", "decode", str(new), str(out), "--model", str(model)]) == 0
    with torch.no_grad():
        expected = codec.decode(codec.encode(torch.from_numpy(sf.read(src, dtype="float32")[0])[None, None]))
    decoded = sf.read(out, dtype="float32")[0]
    n = min(len(decoded), expected.shape[-1])
    assert np.corrcoef(decoded[:n], expected[0, 0, :n].numpy())[0, 1] > 0.999  # the new weights' own decode


def test_entropy_flag_refuses_stale_tables_in_one_line(
    re_exported: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, src, old = re_exported
    capsys.readouterr()
    dst = tmp_path / "x.sgc"
    assert main(["codec", "encode", str(src), str(dst), "--model", str(model), "--bitrate", "10", "--entropy"]) == 2
    err = capsys.readouterr().err.strip()
    assert "fitted for other codec weights" in err and "fit-entropy" in err and "\n" not in err
    assert not dst.exists()
    # the file the old tables coded belongs to the old weights: refused by name, never decoded into noise
    assert main(["codec", "decode", str(old), str(tmp_path / "old.wav"), "--model", str(model)]) == 2
    assert "not by the loaded codec" in capsys.readouterr().err
    assert not (tmp_path / "old.wav").exists()


def test_refitting_makes_the_tables_belong_again(
    re_exported: tuple[Path, Path, Path], tiny_dataset: Path, tmp_path: Path
) -> None:
    model, src, _ = re_exported
    assert main(["codec", "fit-entropy", str(model), "--data", str(tiny_dataset), "--max-contexts", "4"]) == 0
    codec = load_codec(model)
    assert not has_stale_tables(model, codec.model_hash) and load_tables(model, codec.model_hash) is not None
    dst = tmp_path / "y.sgc"
    assert main(["codec", "encode", str(src), str(dst), "--model", str(model), "--bitrate", "10", "--entropy"]) == 0
    assert dst.read_bytes()[4] == 3


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_eval_codec_says_why_its_files_are_bit_packed(
    re_exported: tuple[Path, Path, Path], tiny_dataset: Path, tmp_path: Path
) -> None:
    model, _, _ = re_exported
    out = tmp_path / "eval"
    assert main(["eval", "codec", "--model", str(model), "--data", str(tiny_dataset), "--split", "valid",
                 "--bitrates", "5", "--max-clips", "1", "--out", str(out), "--no-visqol"]) == 0
    notes = json.loads((out / "codec_eval.json").read_text())["notes"]
    assert any("fitted for other weights" in n for n in notes)
