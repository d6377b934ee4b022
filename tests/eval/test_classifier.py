"""The in-project classifier and ``eval generation``: accuracy on held-out clips, adherence, Fréchet distance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sg_testdata import write_labelled_dataset
from soundgen.cli.main import main
from soundgen.eval.classifier import ClassifierDataError, load_classifier
from soundgen.eval.generation_eval import FD_NOTE, PromptFileError, frechet_distance, read_prompts
from soundgen.train.classifier import ClassifierTrainConfig, train_classifier


def _write_dataset(root: Path, per_split: dict[str, int]) -> None:
    write_labelled_dataset(root, per_split, seed=1, varied=True)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cls") / "ds"
    _write_dataset(root, {"train": 24, "valid": 6, "test": 9})
    return root


@pytest.fixture(scope="module")
def classifier_dir(dataset: Path) -> Path:
    out = dataset.parent / "classifier"
    tiny = ClassifierTrainConfig.tiny()
    args = ["--epochs", str(tiny.epochs), "--segment", str(tiny.segment), "--batch-size", str(tiny.batch_size)]
    assert main(["eval", "train-classifier", "--data", str(dataset), "--out", str(out), "--min-clips", "1", *args]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["labels"] == ["click", "noise", "tone"] and report["eval_split"] == "test"
    assert report["eval_clips"] == 9
    return out


def test_classifier_learns_the_categories(classifier_dir: Path) -> None:
    model, report = load_classifier(classifier_dir)
    assert report is not None and report.accuracy >= 0.75 > report.chance
    t = np.arange(8000) / 16000
    probs, emb = model.analyse((0.4 * np.sin(2 * np.pi * 700 * t)).astype(np.float32))
    assert model.cfg.labels[int(np.argmax(probs))] == "tone"
    assert emb.shape == (model.cfg.embed_dim,) and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_too_few_categories_is_an_error(tmp_path: Path) -> None:
    _write_dataset(tmp_path, {"train": 1, "test": 1})
    with pytest.raises(ClassifierDataError, match="needs 2"):
        train_classifier(tmp_path, tmp_path / "c", ClassifierTrainConfig.tiny())


def test_frechet_distance_properties() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifted = frechet_distance(a, a + 3.0)
    assert shifted == pytest.approx(36.0, rel=1e-6)  # |mean difference|^2 = 4 * 3^2
    assert frechet_distance(a, rng.standard_normal((400, 4)) * 2) > 1.0


def test_read_prompts_formats(tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_text('{"prompt": "a beep", "category": "tone"}\nnoise\tstatic hiss\n# comment\n')
    assert [(p.prompt, p.category) for p in read_prompts(f)] == [("a beep", "tone"), ("static hiss", "noise")]
    f.write_text("no tab here\n")
    with pytest.raises(PromptFileError, match=":1:"):
        read_prompts(f)


def test_eval_generation_cli(
    dataset: Path, classifier_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from soundgen.codec.io import save_codec
    from soundgen.lm.io import save_lm
    from soundgen.pipeline import TextToSound

    tts = TextToSound.tiny_random(0)
    model = tmp_path / "model"
    save_codec(tts.codec, model / "codec")  # type: ignore[arg-type]
    save_lm(tts.lm, tts.conditioner, model / "lm")
    prompts = tmp_path / "prompts.tsv"
    prompts.write_text("tone\ta steady tone\nspeech\ta voice\n")
    out = tmp_path / "report"
    code = main(
        [
            "eval",
            "generation",
            "--model",
            str(model),
            "--prompts",
            str(prompts),
            "--data",
            str(dataset),
            "--classifier",
            str(classifier_dir),
            "--count",
            "2",
            "--duration",
            "0.1",
            "--seed",
            "7",
            "--top-k",
            "30",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["n_generated"] == 4 and report["n_real"] == 9
    assert 0.0 <= report["adherence"] <= 1.0 and report["frechet_distance"] >= 0.0
    assert report["prompts"][1]["adherence"] is None  # 'speech' is not a category the classifier knows
    assert report["real_time_factor"] > 0 and report["peak_rss_mb"] > 50
    md = (out / "report.md").read_text()
    settings = report["settings"]  # what made the sounds, so the figures can be made again
    assert (settings["count"], settings["duration"], settings["seed"], settings["top_k"]) == (2, 0.1, 7, 30)
    assert settings["cfg_coef"] == 3.0 and "top-k 30" in md and "seed 7" in md
    assert FD_NOTE in md and "speech" in md
    ref = report["reference"]
    assert ref["clips"] == 9 and ref["codebooks"] == tts.lm.cfg.n_codebooks
    assert 0.0 <= ref["codec_accuracy"] <= 1.0 and 0.0 <= ref["real_accuracy"] <= 1.0
    assert "through the model's codec" in md
    assert "per_label" not in ref
    sheet = out / report["contact_sheet"]  # every generated clip as a spectrogram, linked from the report
    assert sheet.is_file() and sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and report["contact_sheet"] in md
    assert 0.0 <= report["silent_share"] <= 1.0
    assert all(len(p["pitch"]) == 2 and 0 <= p["silent"] <= 2 for p in report["prompts"])
    cats = {p["category"] for p in report["prompts"]}
    assert set(report["per_category"]) == cats == set(report["confusion"])
    assert all(sum(row.values()) == 2 for row in report["confusion"].values())  # two clips per prompt
    assert "## Per category" in md


def test_silence_and_pitch_are_told_apart() -> None:
    from soundgen.eval.sheet import is_silent, pitch_strength

    sr = 16000
    t = np.arange(sr) / sr
    assert is_silent(np.zeros(100)) and is_silent(np.full(100, 1e-3)) and not is_silent(np.full(100, 0.01))
    tone = np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 440 * t)
    noise = np.random.default_rng(0).standard_normal(sr)
    from scipy.signal import butter, sosfilt

    rumble = sosfilt(butter(4, 150, fs=sr, output="sos"), noise)  # smooth, but not periodic
    assert pitch_strength(tone, sr) > 0.9
    assert pitch_strength(noise, sr) < 0.3 and pitch_strength(rumble, sr) < 0.5
    assert pitch_strength(np.zeros(sr), sr) == 0.0


def test_codec_round_trips_keep_length_and_restore_the_codebooks() -> None:
    from soundgen.eval.classifier import codec_round_trips
    from soundgen.pipeline import TextToSound

    codec = TextToSound.tiny_random(0).codec
    before = codec.n_codebooks
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (3000, 8000, 123)]
    out = codec_round_trips(codec, clips, 16000, [1, 2], seed=0)
    again = codec_round_trips(codec, clips, 16000, [1, 2], seed=0)
    assert [len(x) for x in out] == [3000, 8000, 123] and all(x.dtype == np.float32 for x in out)
    assert all(np.array_equal(a, b) for a, b in zip(out, again, strict=True))  # seeded: the same round trips
    assert not np.allclose(out[1], clips[1])  # an untrained codec changes the audio
    assert codec.n_codebooks == before
    short = codec_round_trips(codec, clips, 16000, [2], seed=0, max_seconds=0.25)
    assert [len(x) for x in short] == [3000, 4000, 123]  # excerpts of long clips only


def test_classifier_trained_through_a_codec_reports_both_accuracies(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from soundgen.codec.io import save_codec
    from soundgen.pipeline import TextToSound

    codec_dir = tmp_path / "codec"
    save_codec(TextToSound.tiny_random(0).codec, codec_dir)  # type: ignore[arg-type]
    out = tmp_path / "classifier"
    tiny = ClassifierTrainConfig.tiny()
    args = ["--epochs", str(tiny.epochs), "--segment", str(tiny.segment), "--batch-size", str(tiny.batch_size)]
    base = ["eval", "train-classifier", "--data", str(dataset), "--out", str(out), "--min-clips", "1", *args]
    assert main([*base, "--codec", str(codec_dir), "--codec-share", "1.5"]) != 0
    assert "--codec-share must be between 0 and 1" in capsys.readouterr().err
    assert not out.exists()
    assert main([*base, "--codec", str(codec_dir)]) == 0
    assert "through the codec" in capsys.readouterr().out
    model, report = load_classifier(out)
    from soundgen.codec.io import load_codec

    assert report is not None and report.codec is not None and load_codec(codec_dir).model_hash[:12] in report.codec
    assert report.codec_accuracy is not None and 0.0 <= report.codec_accuracy <= 1.0
    assert report.accuracy > report.chance  # the clean clips are still learnt
    assert main([*base[:4], "--out", str(tmp_path / "c2"), "--codec", str(tmp_path / "none")]) != 0
    assert "Traceback" not in capsys.readouterr().err
