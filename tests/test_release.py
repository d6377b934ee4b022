"""``soundgen model release`` / ``verify``: a model directory plus a card whose hash table guards the files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from soundgen.cli.main import main
from soundgen.errors import CorruptFileError
from soundgen.lm.config import LMRunConfig
from soundgen.release import ReleaseError, ReleaseInputs, VerifyError, card_hashes, release_model, verify_model
from soundgen.train.export import export_model
from soundgen.train.lm import train_lm


@pytest.fixture(scope="module")
def exported(assets: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("release")
    cfg = LMRunConfig.tiny()
    cfg.train.steps, cfg.train.checkpoint_every, cfg.train.sample_every = 4, 2, 0
    train_lm(cfg, assets.tokens, root / "run")
    export_model(root / "run", assets.codec_dir, root / "model", fp16=True)
    return root / "model", root / "run"


def test_release_writes_a_card_whose_hashes_verify(exported: tuple[Path, Path], assets: Any, tmp_path: Path) -> None:
    model, run = exported
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "recipe_report.md").write_text(
        "# Report\n\n- sound effects: 1 h\n\n## Hours per category\n\n| category | clips | hours |\n|---|---:|---:|\n"
        "| tone | 3 | 0.5 |\n\n## Packages\n\n| package | licence |\n|---|---|\n| tones-data | CC0 |\n\n"
        "## Attributions\n\n- **tones-data** (CC0): 2026 The Tone Makers\n"
    )
    evals = tmp_path / "gen"
    evals.mkdir()
    (evals / "report.md").write_text("# Generation evaluation\n\n## Adherence\n\n| prompt | adherence |\n|---|---|\n")
    (tmp_path / "commands.txt").write_text("# comment\nsoundgen lm train --config x\n")
    classifier = tmp_path / "classifier"
    classifier.mkdir()
    (classifier / "report.json").write_text(json.dumps(
        {"labels": ["tone", "noise"], "accuracy": 0.8, "chance": 0.5, "eval_split": "test", "eval_clips": 10,
         "train_clips": 40, "codec": "soundgen-default (0123456789ab)", "codec_accuracy": 0.7}
    ))
    out = tmp_path / "models" / "default"
    release_model(
        ReleaseInputs(model, corpus_dir=corpus, lm_run=run, generation_eval=evals, classifier=classifier,
                      commands=["soundgen lm train --config x"], limits=["It only knows tones."], hardware="a CPU",
                      training_notes=["Steps 0-2 were timed by hand."]),
        out,
    )
    card = (out / "MODEL_CARD.md").read_text()
    for expected in ("2026 The Tone Makers", "| tones-data | CC0 |", "It only knows tones.",
                     "soundgen lm train --config x", "#### Adherence", "LM: 4 steps; steps 0-4 took", "| LM |", "F16",
                     "- Steps 0-2 were timed by hand.", "Hardware: a CPU.", "scores 80.0% on 10 held-out (test)",
                     "round trips through codec soundgen-default (0123456789ab), and scores 70.0%"):
        assert expected in card, expected
    assert "Codec against Opus" in card and "Not run for this release." in card  # no codec eval given
    assert "GPL and Creative Commons share-alike" in card  # licence classes not reported: no promise made
    files = verify_model(out)
    assert files == sorted(card_hashes(card)) and "lm/model.safetensors" in files
    assert main(["model", "verify", str(out)]) == 0

    with pytest.raises(ReleaseError, match="already exists"):
        release_model(ReleaseInputs(model), out)

    # any change to a file, a missing file or an extra one is caught
    cfg = out / "lm" / "config.json"
    data = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**data, "train_steps": 999}))
    with pytest.raises(VerifyError, match="changed: lm/config.json"):
        verify_model(out)
    assert main(["model", "verify", str(out)]) == 2
    (out / "prompts.json").unlink()
    (out / "extra.bin").write_bytes(b"x")
    with pytest.raises(VerifyError, match="missing: prompts.json.*not in the card: extra.bin"):
        verify_model(out)


def test_a_permissive_corpus_is_said_so_and_the_contact_sheet_ships(exported: Any, tmp_path: Path) -> None:
    model, _ = exported
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "recipe_report.md").write_text(
        "# Report\n\n- sound effects: 1 h\n\n## Hours per licence class (clips kept: --licences permissive)\n\n"
        "| class | hours |\n|---|---:|\n| permissive | 1.000 |\n\n## Hours per source\n\n"
        "| source | hours |\n|---|---:|\n"
        "| soundgen-sfx | 1.000 |\n\n## Hours per category\n\n| category | clips | hours |\n|---|---:|---:|\n"
        "| tone | 3 | 0.5 |\n\n## Packages\n\n| package | installed |\n|---|---|\n| tones-data | no |\n\n"
        "## Attributions\n\n"
    )
    (corpus / "recipe_report.json").write_text('{"hours_by_licence": {"permissive": 1.0}}')
    evals = tmp_path / "gen"
    evals.mkdir()
    (evals / "report.md").write_text("# Generation evaluation\n\n![every generated clip](contact_sheet.png)\n")
    (evals / "contact_sheet.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = release_model(ReleaseInputs(model, corpus_dir=corpus, generation_eval=evals), tmp_path / "rel")
    card = (out / "MODEL_CARD.md").read_text()
    assert "You may use the sounds it generates in commercial work" in card
    assert "### Hours per licence class" in card and "| soundgen-sfx | 1.000 |" in card
    assert "tones-data" not in card  # a package that gave nothing is not listed
    assert "](contact_sheet.png)" in card and (out / "contact_sheet.png").is_file()
    assert "contact_sheet.png" in verify_model(out)  # it is one of the checked files


def test_release_refuses_an_oversized_or_incomplete_model(exported: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = exported
    with pytest.raises(ReleaseError, match="over the 0 MiB limit"):
        release_model(ReleaseInputs(model), tmp_path / "out", max_bytes=1000)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))  # nothing half-written left
    from soundgen.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="not a model directory"):
        release_model(ReleaseInputs(tmp_path), tmp_path / "out2")


def test_an_exported_model_has_the_one_card_and_verifies(exported: tuple[Path, Path]) -> None:
    """``lm export`` writes its card with the release's writer: the run's time, the dataset's licences, a file table."""
    model, _ = exported
    card = (model / "MODEL_CARD.md").read_text()
    assert card.startswith("# soundgen text-to-sound model\n")
    assert "- LM: 4 steps; steps 0-4 took" in card and "| LM |" in card and "F16" in card
    assert "- Dataset `ds`: 12 clips" in card and "- test: 12 clips, licence: CC0" in card
    assert "What the licences mean" not in card  # a dataset's own sources: its licences are the reader's to weigh
    assert "- Generated audio may resemble training clips" in card
    assert "lm/model.safetensors" in verify_model(model)


def test_benchmarks_are_shown_by_their_shape(exported: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = exported
    run = {"model": "default", "dtype": "float32", "d_model": 32, "n_layers": 2, "audio_s_per_wall_s": 4.0,
           "ms_per_step": 2.0, "peak_rss_mb": 300.0}
    generation = tmp_path / "generation_speed.json"
    generation.write_text(json.dumps({
        "benchmark": "generation_speed", "setup": "10 s, CFG 3", "load_average_1min_at_start": 1.5,
        "default": [run, {**run, "audio_s_per_wall_s": 6.0, "peak_rss_mb": 310.0}],
        "peer_musicgen_small_size": {**run, "model": "musicgen_small_size", "audio_s_per_wall_s": 0.05},
    }))
    codec = tmp_path / "codec_speed.json"  # the shape benchmarks/codec_speed.py writes
    codec.write_text(json.dumps({"clip_seconds": 10.0, "peer": "EnCodec 24 kHz", "threads": {"1": {"inference": {
        "encodec_encode_x_realtime": 10.8, "encodec_decode_x_realtime": 9.2,
        "configs": {"default": {"encode_x_realtime": 110.0, "decode_x_realtime": 120.0}}}}}}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"benchmark": "data_build", "files_per_s": 12.5, "nested": {"ignored": 1}}))
    benches = [generation, codec, other, tmp_path / "absent.json"]
    out = release_model(ReleaseInputs(model, benchmarks=benches), tmp_path / "rel")
    card = (out / "MODEL_CARD.md").read_text()
    for expected in (
        "### generation_speed (`generation_speed.json`)", "Setup: 10 s, CFG 3",
        "| default (d32 x 2) | float32 | 5.00 | 2.00 | 310 |",  # medians of the two runs, the peak of their peaks
        "| musicgen_small_size (d32 x 2) | float32 | 0.05 | 2.00 | 300 |",
        "Load average at the start: 1.5 (the machine is shared).",
        "Peer: EnCodec 24 kHz; 10.0 s clips.", "| 1 | default | 110.0 | 10.8 | 120.0 | 9.2 |",
        "### data_build (`other.json`)", "- files_per_s: 12.5", "- `absent.json`: not found",
    ):
        assert expected in card, expected
    assert "ignored" not in card


def test_a_corrupt_classifier_report_is_named(exported: tuple[Path, Path], tmp_path: Path) -> None:
    from soundgen.errors import CorruptFileError

    model, _ = exported
    (tmp_path / "classifier").mkdir()
    (tmp_path / "classifier" / "report.json").write_text('{"accuracy": 0.9}')
    with pytest.raises(CorruptFileError, match="is not a classifier report"):
        release_model(ReleaseInputs(model, classifier=tmp_path / "classifier"), tmp_path / "rel")
    assert not (tmp_path / "rel").exists()


def test_the_example_prompts_are_those_the_evaluation_heard_right(exported: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = exported
    evals = tmp_path / "gen"
    evals.mkdir()
    rows = [
        {"prompt": "a blast", "category": "explosion", "adherence": 1.0, "silent": 0},
        {"prompt": "a boom", "category": "explosion", "adherence": 0.5, "silent": 0},  # heard wrong once
        {"prompt": "rain on a roof", "category": "rain", "adherence": 1.0, "silent": 0},
        {"prompt": "heavy rain", "category": "rain", "adherence": 1.0, "silent": 0},
        {"prompt": "a quiet beep", "category": "ui", "adherence": 1.0, "silent": 1},  # right but once silent
        {"prompt": "a piano", "category": "music/piano", "adherence": 1.0, "silent": 0},
        {"prompt": 7, "category": "music/piano", "adherence": 1.0, "silent": 0},  # not a prompt: skipped
    ]
    (evals / "report.json").write_text(json.dumps({"prompts": rows}))
    out = release_model(ReleaseInputs(model, generation_eval=evals), tmp_path / "rel")
    # rain first (two prompts worked), then one per category in the evaluation's order, then rain's second
    assert json.loads((out / "prompts.json").read_text())["example_prompts"] == [
        "rain on a roof", "a blast", "a piano", "heavy rain"
    ]
    assert "- rain on a roof" in (out / "MODEL_CARD.md").read_text()
    verify_model(out)  # the card's hash table covers the new prompts.json
    assert json.loads((model / "prompts.json").read_text()) != json.loads((out / "prompts.json").read_text())

    (evals / "report.json").write_text(json.dumps({"prompts": [rows[1]]}))  # nothing heard right every time
    kept = release_model(ReleaseInputs(model, generation_eval=evals), tmp_path / "rel2")
    assert (kept / "prompts.json").read_bytes() == (model / "prompts.json").read_bytes()

    (evals / "report.json").write_text("{not json")
    with pytest.raises(CorruptFileError, match="report.json"):
        release_model(ReleaseInputs(model, generation_eval=evals), tmp_path / "rel3")
    assert not (tmp_path / "rel3").exists()
