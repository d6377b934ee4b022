"""Choosing the next token from logits: temperature, top-k, top-p, classifier-free guidance."""

from __future__ import annotations

import torch

from soundgen.lm.sampling_params import SamplingParams


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
