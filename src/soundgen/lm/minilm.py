"""A plain-PyTorch BERT encoder for the packaged all-MiniLM-L6-v2, without ``transformers``.

Importing ``transformers`` costs several seconds of startup; the encoder itself is a few dozen lines. This module
reads the package's ``config.json``, ``model.safetensors`` and ``tokenizer.json`` and reproduces the
``last_hidden_state`` of ``transformers``' ``BertModel`` (post-LayerNorm layers, exact-erf GELU, absolute
positions, token type 0) and the ids of its fast tokenizer ([CLS] ... [SEP], lower-cased WordPiece).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from soundgen.errors import ConfigError, CorruptFileError
from soundgen.lm.prompt_tokens import REINSTALL_MINILM as _REINSTALL
from soundgen.lm.prompt_tokens import BertTokenizer, minilm_folder

__all__ = ["BertConfig", "BertEncoder", "BertLayer", "BertTokenizer", "load_encoder", "load_minilm", "minilm_folder"]



@dataclass(frozen=True)
class BertConfig:
    """Sizes of a BERT encoder, as its ``config.json`` gives them."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    layer_norm_eps: float
    type_vocab_size: int = 2

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        """Read and check ``config.json``.

        Raises:
            CorruptFileError: the file is unreadable, lacks a size, or describes a model this encoder cannot run.
        """
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptFileError(f"cannot read the MiniLM config {path} ({e}); {_REINSTALL}") from None
        if not isinstance(raw, dict):
            raise CorruptFileError(f"the MiniLM config {path} is not a JSON object; {_REINSTALL}")
        act, pos = raw.get("hidden_act", "gelu"), raw.get("position_embedding_type", "absolute")
        if act != "gelu" or pos != "absolute":
            raise CorruptFileError(
                f"the MiniLM config {path} asks for hidden_act={act!r}, position_embedding_type={pos!r}; "
                f"soundgen's encoder runs only 'gelu' and 'absolute'; {_REINSTALL}"
            )
        values: dict[str, Any] = {"type_vocab_size": 2, **raw}  # BertModel's default: 2 token types
        for f in fields(cls):
            value = values.get(f.name)
            kind = (int, float) if f.name == "layer_norm_eps" else (int,)
            if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
                raise CorruptFileError(f"the MiniLM config {path} has {f.name}={value!r}; {_REINSTALL}")
        cfg = cls(**{f.name: values[f.name] for f in fields(cls)})
        if cfg.hidden_size % cfg.num_attention_heads:
            raise CorruptFileError(
                f"the MiniLM config {path}: hidden_size {cfg.hidden_size} is not a multiple of "
                f"num_attention_heads {cfg.num_attention_heads}; {_REINSTALL}"
            )
        return cfg


class _Linear(nn.Module):
    """``nn.Linear`` without its random init (150 ms for this model): the weights always come from the file."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        self.bias = nn.Parameter(torch.empty(d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class _LayerNorm(nn.Module):
    """``nn.LayerNorm`` without its init, as :class:`_Linear`."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim))
        self.bias = nn.Parameter(torch.empty(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class BertLayer(nn.Module):
    """Post-LayerNorm transformer layer: self-attention, add & norm, GELU feed-forward, add & norm."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.n_heads = cfg.num_attention_heads
        self.query, self.key, self.value = _Linear(d, d), _Linear(d, d), _Linear(d, d)
        self.attn_out = _Linear(d, d)
        self.attn_norm = _LayerNorm(d, cfg.layer_norm_eps)
        self.ff_in = _Linear(d, cfg.intermediate_size)
        self.ff_out = _Linear(cfg.intermediate_size, d)
        self.ff_norm = _LayerNorm(d, cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, L, D]``, ``mask`` ``[B, 1, 1, L]`` bool (True: attend to that key) -> ``[B, L, D]``."""
        b, length, d = x.shape
        q, k, v = (
            lin(x).view(b, length, self.n_heads, d // self.n_heads).transpose(1, 2)  # [B, H, L, D/H]
            for lin in (self.query, self.key, self.value)
        )
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, length, d)
        x = self.attn_norm(x + self.attn_out(a))
        return self.ff_norm(x + self.ff_out(F.gelu(self.ff_in(x))))  # exact erf GELU, as BERT's "gelu"


class BertEncoder(nn.Module):
    """BERT without its pooler: token ids ``[B, L]`` -> ``last_hidden_state`` ``[B, L, D]``.

    Built with uninitialised parameters; :func:`load_encoder` fills them from the package's weights.
    """

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.config = cfg
        d = cfg.hidden_size
        self.word_embeddings = nn.Parameter(torch.empty(cfg.vocab_size, d))
        self.position_embeddings = nn.Parameter(torch.empty(cfg.max_position_embeddings, d))
        self.token_type_embeddings = nn.Parameter(torch.empty(cfg.type_vocab_size, d))
        self.embed_norm = _LayerNorm(d, cfg.layer_norm_eps)
        self.layers = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode token ids.

        Args:
            input_ids: ``[B, L]`` token ids, ``L <= max_position_embeddings``.
            attention_mask: ``[B, L]``, nonzero at real tokens; padding is never attended to.

        Returns:
            ``[B, L, D]`` token embeddings (padded positions hold values that mean nothing).
        """
        length = input_ids.shape[1]
        if length > self.config.max_position_embeddings:
            raise ValueError(f"{length} tokens exceed max_position_embeddings={self.config.max_position_embeddings}")
        x = F.embedding(input_ids, self.word_embeddings) + self.position_embeddings[:length]
        x = x + self.token_type_embeddings[0]  # every token is of type 0 (one sentence)
        x = self.embed_norm(x)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.bool()[:, None, None, :]  # [B, 1, 1, L]
        for layer in self.layers:
            x = layer(x, mask)
        return x


def _weight_names(cfg: BertConfig) -> dict[str, str]:
    """Our parameter names -> their names in the package's ``model.safetensors`` (``BertModel`` naming)."""
    names = {
        "word_embeddings": "embeddings.word_embeddings.weight",
        "position_embeddings": "embeddings.position_embeddings.weight",
        "token_type_embeddings": "embeddings.token_type_embeddings.weight",
        "embed_norm.weight": "embeddings.LayerNorm.weight",
        "embed_norm.bias": "embeddings.LayerNorm.bias",
    }
    theirs = {
        "query": "attention.self.query",
        "key": "attention.self.key",
        "value": "attention.self.value",
        "attn_out": "attention.output.dense",
        "attn_norm": "attention.output.LayerNorm",
        "ff_in": "intermediate.dense",
        "ff_out": "output.dense",
        "ff_norm": "output.LayerNorm",
    }
    for i in range(cfg.num_hidden_layers):
        for ours, hf in theirs.items():
            for p in ("weight", "bias"):
                names[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{hf}.{p}"
    return names


def load_encoder(folder: Path) -> BertEncoder:
    """Build the frozen encoder (eval mode) from ``config.json`` and ``model.safetensors`` in ``folder``.

    Raises:
        CorruptFileError: the config or the weights are unreadable, or a weight is missing or misshapen.
    """
    cfg = BertConfig.from_json(folder / "config.json")
    model = BertEncoder(cfg)
    path = folder / "model.safetensors"
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        weights = load_file(path)
    except (OSError, SafetensorError) as e:
        raise CorruptFileError(f"cannot read the MiniLM weights {path} ({e}); {_REINSTALL}") from None
    expected = dict(model.state_dict())
    state: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for ours, theirs in _weight_names(cfg).items():
        tensor, shape = weights.get(theirs), tuple(expected[ours].shape)
        if tensor is None:
            problems.append(f"{theirs} is missing")
        elif tuple(tensor.shape) != shape or not tensor.is_floating_point():
            problems.append(f"{theirs} is {tensor.dtype} {tuple(tensor.shape)}, expected floating point {shape}")
        else:
            state[ours] = tensor.float()
    if problems:
        shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        raise CorruptFileError(f"the MiniLM weights {path} are damaged: {shown}; {_REINSTALL}")
    model.load_state_dict(state, strict=True, assign=True)
    model.eval().requires_grad_(False)
    return model


def load_minilm(max_tokens: int, folder: Path | None = None) -> tuple[BertTokenizer, BertEncoder]:
    """Tokenizer and frozen encoder of all-MiniLM-L6-v2 (from the package, or from ``folder``).

    Raises:
        MissingDependencyError: the package or ``tokenizers`` is not installed.
        CorruptFileError: a model file is damaged.
        ConfigError: ``max_tokens`` is below 2 or above the encoder's ``max_position_embeddings``.
    """
    folder = minilm_folder() if folder is None else folder
    encoder = load_encoder(folder)
    if not 2 <= max_tokens <= encoder.config.max_position_embeddings:
        limit = encoder.config.max_position_embeddings
        raise ConfigError(f"text_encoder.max_tokens is {max_tokens}; MiniLM takes 2 to {limit}: change it")
    return BertTokenizer(folder / "tokenizer.json", max_tokens), encoder
