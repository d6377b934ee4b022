"""``soundgen eval codec`` on a tiny model and dataset: every output written, baselines in the same run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from soundgen.cli.main import main
from soundgen.codec import CodecConfig, build_codec
from soundgen.codec.io import save_codec
from soundgen.eval.baselines import available_encoders
from soundgen.eval.codec_eval import align


def test_align_removes_codec_delay() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(4000).astype(np.float32)
    delayed = np.concatenate([np.zeros(312, np.float32), ref])[:4100]
    assert np.allclose(align(ref, delayed)[:-312], ref[:-312])
    early = ref[50:]
    assert np.allclose(align(ref, early)[50:-50], ref[50:-50])


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_eval_codec_cli(tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    model = save_codec(build_codec(CodecConfig.tiny()), tmp_path / "model")
    out = tmp_path / "eval"
    args = ["eval", "codec", "--model", str(model), "--data", str(tiny_dataset), "--split", "valid"]
    code = main([*args, "--bitrates", "5", "--max-clips", "1", "--out", str(out), "--no-visqol"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| soundgen | 5 |" in printed
    result = json.loads((out / "codec_eval.json").read_text())
    systems = {row["system"] for row in result["rows"]}
    assert "soundgen" in systems
    if "libopus" in available_encoders():
        assert "opus" in systems
    for row in result["rows"]:
        assert row["actual_kbps"] > 0 and row["encode_x_realtime"] > 0 and np.isfinite(row["mel"])
    assert any("mp3 skipped" in n for n in result["notes"])
    assert (out / "codec_eval.md").read_text().startswith("# Codec evaluation")
    assert (out / "codec_eval.png").stat().st_size > 1000


def test_eval_codec_can_leave_the_baselines_out(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = save_codec(build_codec(CodecConfig.tiny()), tmp_path / "model")
    args = ["eval", "codec", "--model", str(model), "--data", str(tiny_dataset), "--split", "valid", "--no-visqol",
            "--bitrates", "5", "--max-clips", "1"]
    assert main([*args, "--systems", "soundgen", "--out", str(tmp_path / "a")]) == 0
    result = json.loads((tmp_path / "a" / "codec_eval.json").read_text())
    assert {row["system"] for row in result["rows"]} == {"soundgen"}
    assert not any("mp3" in n for n in result["notes"])
    capsys.readouterr()
    assert main([*args, "--systems", "soundgen,vorbis", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "vorbis" in err and "codec2" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()


def test_eval_codec_rejects_bad_bitrates(tiny_dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "codec", "--data", str(tiny_dataset), "--bitrates", "fast"]) == 2
    assert "--bitrates" in capsys.readouterr().err


def test_visqol_skips_clips_too_short_to_score() -> None:
    from soundgen.eval.codec_eval import _Scorer

    notes: list[str] = []
    scorer = _Scorer(16000, visqol=True, notes=notes)
    if notes:
        pytest.skip(notes[0])
    t = np.arange(3200) / 16000  # 0.2 s: shorter than one ViSQOL patch
    clip = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    scores = scorer.score(clip, clip, speech=False)
    assert "visqol" not in scores and scores["si_sdr"] > 30


def test_clips_are_picked_in_turn_from_each_category() -> None:
    from types import SimpleNamespace

    from soundgen.eval.codec_eval import pick_clips

    clips = [SimpleNamespace(id=f"m{i}", category="music") for i in range(10)]
    clips += [SimpleNamespace(id="d0", category="door"), SimpleNamespace(id="g0", category="gunshot"),
              SimpleNamespace(id="g1", category="gunshot")]
    assert [c.id for c in pick_clips(clips, 5)] == ["d0", "g0", "m0", "g1", "m1"]
    assert [c.id for c in pick_clips(clips, 2)] == ["d0", "g0"]
    assert len(pick_clips(clips, 100)) == len(clips)
