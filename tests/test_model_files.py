"""Model directories on disk: where the default one is, and its example prompts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from soundgen.codec.config import CodecConfig
from soundgen.codec.io import resolve_model_dir, save_codec
from soundgen.codec.model import build_codec
from soundgen.errors import ModelNotFoundError
from soundgen.lm.config import LMTrainParams
from soundgen.model_files import (
    BUNDLED_MODEL_DIR,
    EXAMPLE_PROMPTS,
    default_model_dir,
    read_example_prompts,
    write_example_prompts,
)


def test_example_prompts_file_is_validated(tmp_path: Path) -> None:
    assert read_example_prompts(tmp_path) is None
    write_example_prompts(tmp_path, ["a steady tone", "rain"])
    assert read_example_prompts(tmp_path) == ["a steady tone", "rain"]
    for bad in ("not json", '{"example_prompts": [1, 2]}', '["a"]', '{"example_prompts": [" "]}'):
        (tmp_path / "prompts.json").write_text(bad)
        assert read_example_prompts(tmp_path) is None


def test_training_samples_draw_from_the_example_prompts() -> None:
    assert LMTrainParams().sample_prompts == EXAMPLE_PROMPTS[:4]


def test_default_model_dir_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOUNDGEN_MODEL", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match=r"no model is installed .*\$SOUNDGEN_MODEL.*soundgen lm export"):
        default_model_dir()
    monkeypatch.delenv("SOUNDGEN_MODEL")
    try:
        assert default_model_dir() == BUNDLED_MODEL_DIR
    except ModelNotFoundError as e:  # a checkout without the bundled model
        assert "the bundled default" in str(e)


def test_codec_and_generate_find_the_same_default_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = tmp_path / "model"
    monkeypatch.setenv("SOUNDGEN_MODEL", str(model))
    with pytest.raises(ModelNotFoundError, match="soundgen codec export"):
        resolve_model_dir(None)
    torch.manual_seed(0)
    save_codec(build_codec(CodecConfig.tiny()), model / "codec")
    assert resolve_model_dir(None) == model / "codec"
    with pytest.raises(ModelNotFoundError):  # generate needs the LM too
        default_model_dir()
    (model / "lm").mkdir()
    (model / "lm" / "config.json").write_text("{}")
    assert default_model_dir() == model and resolve_model_dir(None) == default_model_dir() / "codec"
