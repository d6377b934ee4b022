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
    """Classifier-free guidance on logits: ``uncond + coef * (cond - uncond)``."""
    return uncond + coef * (cond - uncond)


def sample_tokens(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> torch.Tensor:
    """Draw one token per row.

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
    flat = flat / params.temperature
    if 0 < params.top_k < flat.shape[-1]:
        kth = torch.topk(flat, params.top_k, dim=-1).values[:, -1:]
        flat = flat.masked_fill(flat < kth, float("-inf"))
    if 0.0 < params.top_p < 1.0:
        flat = _top_p(flat, params.top_p)
    probs = torch.softmax(flat, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).view(shape)


def _top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Mask logits ``[N, V]`` outside the nucleus of probability ``p`` (the most likely token always stays)."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability mass strictly above each token
    drop_sorted = before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))
