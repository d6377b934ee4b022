"""Choosing the next token from logits: temperature, top-k, top-p, classifier-free guidance."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from soundgen.errors import InvalidRequestError


@dataclass
class SamplingParams:
    """How tokens are drawn.

    Attributes:
        temperature: softmax temperature; 0 picks the most likely token (greedy).
        top_k: keep only the k most likely tokens (0: no limit).
        top_p: keep the smallest set of tokens whose probability reaches p (0: no nucleus filtering).
        cfg_coef: classifier-free guidance: ``uncond + cfg_coef * (cond - uncond)``; 1 is the plain conditional.
    """

    temperature: float = 1.0
    top_k: int = 250
    top_p: float = 0.0
    cfg_coef: float = 3.0

    def check(self) -> None:
        """Raise :class:`InvalidRequestError` for values out of range."""
        if not self.temperature >= 0.0 or self.temperature > 100.0:
            raise InvalidRequestError(f"temperature must be between 0 and 100, got {self.temperature}")
        if self.top_k < 0:
            raise InvalidRequestError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if not 0.0 <= self.top_p <= 1.0:
            raise InvalidRequestError(f"top_p must be between 0 (off) and 1, got {self.top_p}")
        if not 0.0 <= self.cfg_coef <= 100.0:
            raise InvalidRequestError(f"cfg_coef must be between 0 and 100, got {self.cfg_coef}")


def apply_cfg(cond: torch.Tensor, uncond: torch.Tensor, coef: float) -> torch.Tensor:
    """Classifier-free guidance on logits: ``uncond + coef * (cond - uncond)``, in one op (``coef == 1`` gives
    ``cond`` exactly)."""
    return torch.lerp(uncond, cond, coef)


def sample_tokens(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> torch.Tensor:
    """Draw one token per row.

    With top-k on, the draw happens among the k best tokens only (exactly k, ties broken by
    :func:`torch.topk`), so that the softmax, the nucleus filter and the draw work on ``k`` values, not on the
    whole vocabulary.

    Args:
        logits: ``[..., V]`` float logits.
        params: temperature, top-k and top-p.
        generator: random generator (its state advances identically whatever the logits, for a fixed shape).

    Returns:
        ``[...]`` int64 tokens.
    """
    shape = logits.shape[:-1]
    flat = logits.reshape(-1, logits.shape[-1]).float()
    if params.temperature == 0.0:
        return flat.argmax(-1).view(shape)
    if params.temperature != 1.0:
        flat = flat / params.temperature
    nucleus = 0.0 < params.top_p < 1.0
    if 0 < params.top_k < flat.shape[-1]:
        values, indices = torch.topk(flat, params.top_k, dim=-1)  # sorted, most likely first
        if nucleus:
            values = _top_p_sorted(values, params.top_p)
        choice = torch.multinomial(torch.softmax(values, dim=-1), 1, generator=generator)
        return indices.gather(-1, choice).view(shape)
    if nucleus:
        flat = _top_p(flat, params.top_p)
    probs = torch.softmax(flat, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).view(shape)


def _outside_nucleus(sorted_logits: torch.Tensor, p: float) -> torch.Tensor:
    """``[N, V]`` bool, True for the tokens of ``sorted_logits`` (descending) outside the nucleus of probability
    ``p`` (the most likely token always stays)."""
    probs = torch.softmax(sorted_logits, dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability mass strictly above each token
    return before >= p


def _top_p_sorted(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Mask logits ``[N, V]`` sorted in descending order outside the nucleus of probability ``p``."""
    return logits.masked_fill(_outside_nucleus(logits, p), float("-inf"))


def _top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Mask logits ``[N, V]`` outside the nucleus of probability ``p`` (the most likely token always stays)."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    drop = torch.zeros_like(sorted_logits, dtype=torch.bool).scatter(-1, order, _outside_nucleus(sorted_logits, p))
    return logits.masked_fill(drop, float("-inf"))
