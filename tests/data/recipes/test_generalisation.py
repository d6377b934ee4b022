"""The generalisation set (``soundgen data recipe generalisation``): what it holds, that a seed fixes it, that the
codec eval reads it, and a clear refusal without espeak-ng."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from soundgen.cli.main import main
from soundgen.data.manifest import read_manifest
from soundgen.data.recipes import speech, textures
from soundgen.data.recipes.generalisation import (
    INSTRUMENTS,
    GeneralisationConfig,
    corpus_programs,
    run_generalisation,
)
from soundgen.data.recipes.packages import SOUNDFONT_PATH
from soundgen.errors import ConfigError, MissingDependencyError

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)"
)
needs_soundfont = pytest.mark.skipif(not SOUNDFONT_PATH.is_file(), reason="needs fluid-soundfont-gm")


def test_instruments_are_none_the_corpus_recipe_plays() -> None:
    programs = [p for p, *_ in INSTRUMENTS]
    assert len(set(programs)) == len(programs)
    assert not set(programs) & corpus_programs()
    assert {0, 40, 48, 73} <= corpus_programs()  # piano, violin, strings, flute: the corpus's own


@pytest.mark.parametrize("kind", sorted(textures.SYNTH_TEXTURES))
def test_synthesised_textures_are_finite_sound_and_seeded(kind: str) -> None:
    make = textures.SYNTH_TEXTURES[kind]
    a, b = make(np.random.default_rng(3), 16000), make(np.random.default_rng(3), 16000)
    x = textures.finish(a.samples, 16000)
    assert np.array_equal(a.samples, b.samples) and np.isfinite(x).all()
    assert 1.0 <= len(x) / 16000 <= 6.0 and abs(float(np.max(np.abs(x))) - textures.PEAK) < 1e-4
    assert float(np.sqrt(np.mean(x**2))) > 0.01  # not near-silence
    assert a.caption and a.tags


def test_karplus_strong_string_sounds_at_its_pitch() -> None:
    x = textures._pluck(np.random.default_rng(0), 16000, 220.0, 1.0, 0.996)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    peak_hz = float(np.argmax(spectrum[20:]) + 20) * 16000 / len(x)
    assert abs(peak_hz - 16000 / round(16000 / 220.0)) < 3  # the delay line's period sets the pitch
    assert np.abs(x[-1600:]).max() < np.abs(x[:1600]).max()  # and it decays


@needs_espeak
def test_speak_gives_speech_at_the_rate_asked() -> None:
    u = speech.Utterance("en-gb", "m3", 170, 50, "Seven orange boxes.")
    x = speech.speak(u, 16000)
    assert x.dtype == np.float32 and 0.5 < len(x) / 16000 < 4 and np.abs(x).max() > 0.05
    assert np.array_equal(x, speech.speak(u, 16000))  # espeak-ng is deterministic
    assert len(speech.speak(speech.Utterance("en-gb", "m3", 340, 50, u.text), 16000)) < 0.7 * len(x)  # faster


@needs_espeak
@needs_soundfont
def test_the_set_is_a_test_split_with_a_report_of_every_clip(tmp_path: Path) -> None:
    cfg = GeneralisationConfig.tiny(tmp_path / "gen")
    result = run_generalisation(cfg)
    clips = read_manifest(cfg.out, "test")
    assert not read_manifest(cfg.out, "train") and not read_manifest(cfg.out, "valid")
    kinds = 5 + 3  # synthesised textures + speech textures
    assert len(clips) == cfg.speech_clips + cfg.music_clips + kinds * cfg.texture_clips == len(result.clips)
    assert {c.category for c in clips} == {"speech", "music", "texture"}
    for c in clips:
        audio, rate = sf.read(c.path(cfg.out))
        assert rate == 16000 and audio.ndim == 1 and len(audio) / rate > 0.5
        assert c.licence != "unknown" and c.source == "soundgen-generalisation"
    assert all("espeak-ng" in c.licence and "GPL-3.0-or-later" in c.licence
               for c in clips if c.category == "speech")
    report = json.loads(result.report_json.read_text())
    assert {r["id"] for r in report["rows"]} == {c.id for c in clips}
    assert "eSpeak NG" in report["espeak_ng"]
    voiced = [r for r in report["rows"] if r["category"] == "speech"]
    assert all(r["how"]["voice"] and r["how"]["text"] for r in voiced)
    programs = {r["how"]["gm_program"] for r in report["rows"] if r["category"] == "music"}
    assert len(programs) == cfg.music_clips and not programs & corpus_programs()
    md = result.report_md.read_text()
    assert all(c.id in md for c in clips) and "| licence |" in md


@needs_espeak
@needs_soundfont
def test_a_seed_fixes_the_set(tmp_path: Path) -> None:
    def ids(out: Path, seed: int) -> list[str]:
        cfg = GeneralisationConfig(out, seed=seed, speech_clips=2, music_clips=2, texture_clips=1)
        return sorted(r.id for r in run_generalisation(cfg).clips)

    first = ids(tmp_path / "a", 0)
    assert first == ids(tmp_path / "b", 0)  # ids are hashes of the audio: the same bytes
    assert not set(first) & set(ids(tmp_path / "c", 1))


@needs_espeak
@needs_soundfont
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_eval_codec_reads_the_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from soundgen.codec import CodecConfig, build_codec
    from soundgen.codec.io import save_codec

    data = tmp_path / "gen"
    assert main(["data", "recipe", "generalisation", "--out", str(data), "--speech-clips", "1", "--music-clips",
                 "1", "--texture-clips", "0"]) == 0
    assert "2 clips" in capsys.readouterr().out
    torch.manual_seed(0)
    model = save_codec(build_codec(CodecConfig.tiny()), tmp_path / "model")
    out = tmp_path / "eval"
    assert main(["eval", "codec", "--model", str(model), "--data", str(data), "--bitrates", "5", "--max-seconds",
                 "1", "--out", str(out), "--no-visqol"]) == 0
    result = json.loads((out / "codec_eval.json").read_text())
    assert len(result["clips"]) == 2
    assert not any("no speech clips" in n for n in result["notes"])  # the speech clip is recognised as speech


def test_missing_espeak_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no espeak-ng anywhere on it
    with pytest.raises(MissingDependencyError, match="apt-get install espeak-ng"):
        run_generalisation(GeneralisationConfig.tiny(tmp_path / "gen"))
    assert not (tmp_path / "gen").exists()  # refused before anything was written
    assert main(["data", "recipe", "generalisation", "--out", str(tmp_path / "gen")]) != 0
    err = capsys.readouterr().err.strip()
    assert "espeak-ng" in err and "\n" not in err and "Traceback" not in err


def test_bad_counts_are_refused(tmp_path: Path) -> None:
    for cfg in (GeneralisationConfig(tmp_path, music_clips=len(INSTRUMENTS) + 1),
                GeneralisationConfig(tmp_path, speech_clips=-1),
                GeneralisationConfig(tmp_path, speech_clips=0, music_clips=0, texture_clips=0)):
        with pytest.raises(ConfigError):
            cfg.validate()
