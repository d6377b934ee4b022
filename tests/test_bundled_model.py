"""The bundled default model (models/default): its files match MODEL_CARD.md, it loads, and it makes sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soundgen.release import MAX_BYTES_DEFAULT, card_hashes, verify_model

MODEL = Path(__file__).resolve().parents[1] / "models" / "default"


def test_bundled_files_match_the_model_card() -> None:
    files = verify_model(MODEL)  # every file's size and SHA-256 against the card's table
    required = {"codec/config.json", "codec/model.safetensors", "lm/config.json", "lm/model.safetensors"}
    assert required <= set(files)
    card = (MODEL / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert sum(size for size, _ in card_hashes(card).values()) <= MAX_BYTES_DEFAULT
    for section in ("## Training data", "### Attributions", "## Evaluation", "## Known limits"):
        assert section in card


def test_bundled_model_generates_a_sound(monkeypatch: pytest.MonkeyPatch) -> None:
    from soundgen.model_files import default_model_dir, read_example_prompts
    from soundgen.pipeline import GenerationRequest, TextToSound

    monkeypatch.delenv("SOUNDGEN_MODEL", raising=False)
    assert default_model_dir() == MODEL
    tts = TextToSound.load()  # no argument: the bundled model
    prompts = read_example_prompts(MODEL)
    assert prompts, "the bundled model suggests example prompts"
    result = tts.generate(GenerationRequest(prompts[0], duration=1.0, seed=0))
    audio = np.asarray(result.audio[0])
    assert result.sample_rate == 16000 and audio.shape == (1, 16000)
    assert np.isfinite(audio).all() and 1e-4 < float(np.sqrt(np.mean(audio**2))) and np.abs(audio).max() <= 1.0
