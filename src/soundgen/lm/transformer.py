"""Pre-norm transformer decoder blocks with causal self-attention, cross-attention and a KV cache.

Attention goes through :func:`torch.nn.functional.scaled_dot_product_attention`. The self-attention cache is
preallocated for the whole sequence and written in place, so a decoding step costs no concatenation; the
cross-attention keys and values of the (fixed) text memory are computed once per generation.

These modules are the model's one definition: training, prefills and the reference decoding path run them. The
single decoding step of generation is the same arithmetic on ``[B, D]`` rows, written once in
:mod:`soundgen.lm.fused_step` over weights laid out for it by :mod:`soundgen.lm.step_weights`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LayerCache:
    """One block's cache.

    Attributes:
        k: ``[B, H, capacity, Dh]`` self-attention keys of the steps seen so far.
        v: ``[B, H, capacity, Dh]`` values.
        cross_k: ``[B, H, M, Dh]`` cross-attention keys of the memory (set on first use).
        cross_v: ``[B, H, M, Dh]`` cross-attention values.
    """

    k: torch.Tensor
    v: torch.Tensor
    cross_k: torch.Tensor | None = None
    cross_v: torch.Tensor | None = None


@dataclass
class DecodingState:
    """Everything a generation keeps between steps.

    Attributes:
        layers: one :class:`LayerCache` per block.
        length: steps already in the cache.
    """

    layers: list[LayerCache]
    length: int = 0

    @classmethod
    def empty(
        cls,
        n_layers: int,
        batch: int,
        n_heads: int,
        head_dim: int,
        capacity: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> DecodingState:
        """A fresh cache able to hold ``capacity`` steps."""
        shape = (batch, n_heads, capacity, head_dim)
        layers = [
            LayerCache(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))
            for _ in range(n_layers)
        ]
        return cls(layers)


class SelfAttention(nn.Module):
    """Causal multi-head self-attention with an optional in-place KV cache."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None, offset: int = 0) -> torch.Tensor:
        """Attend ``x`` ``[B, S, D]`` (steps ``offset .. offset+S-1``) to itself and to the cached steps.

        Returns:
            ``[B, S, D]``.
        """
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)  # [B,H,S,Dh]
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            end = offset + s
            cache.k[:, :, offset:end] = k
            cache.v[:, :, offset:end] = v
            keys, values = cache.k[:, :, :end], cache.v[:, :, :end]
            if s == 1:  # one new step sees every earlier step: no mask needed
                y = F.scaled_dot_product_attention(q, keys, values)
            elif offset == 0:
                y = F.scaled_dot_product_attention(q, keys, values, is_causal=True)
            else:
                mask = torch.ones(s, end, dtype=torch.bool, device=x.device).tril(diagonal=offset)
                y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, s, d))


class CrossAttention(nn.Module):
    """Multi-head attention from the audio steps to the text memory."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.kv = nn.Linear(d_model, 2 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_bias: torch.Tensor, cache: LayerCache | None = None
    ) -> torch.Tensor:
        """Attend ``x`` ``[B, S, D]`` to ``memory`` ``[B, M, D]``.

        ``memory_bias`` ``[B, 1, 1, M]`` is added to the attention scores: 0 where visible, -inf where hidden.

        Returns:
            ``[B, S, D]``.
        """
        b, s, d = x.shape
        q = self.q(x).view(b, s, self.n_heads, d // self.n_heads).transpose(1, 2)
        k, v = self.memory_kv(memory, cache)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=memory_bias)
        return self.out(y.transpose(1, 2).reshape(b, s, d))

    def memory_kv(self, memory: torch.Tensor, cache: LayerCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values ``[B, H, M, Dh]`` of ``memory`` ``[B, M, D]``: from ``cache`` if it has them, else
        computed (and stored in ``cache`` when one is given)."""
        if cache is not None and cache.cross_k is not None and cache.cross_v is not None:
            return cache.cross_k, cache.cross_v
        b, m, d = memory.shape
        k, v = self.kv(memory).view(b, m, 2, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            cache.cross_k, cache.cross_v = k, v
        return k, v


class Block(nn.Module):
    """Pre-norm block: causal self-attention, cross-attention to the text, feed-forward.

    Dropout (training only) acts on the residual branches; attention weights are not dropped, which keeps
    attention on the fused SDPA kernels.
    """

    def __init__(self, d_model: int, n_heads: int, ff_mult: float, dropout: float) -> None:
        super().__init__()
        hidden = int(round(d_model * ff_mult))
        self.norm1 = nn.LayerNorm(d_model)
        self.self_attn = SelfAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.cross_attn = CrossAttention(d_model, n_heads)
        self.norm3 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_bias: torch.Tensor,
        cache: LayerCache | None = None,
        offset: int = 0,
    ) -> torch.Tensor:
        """``x`` ``[B, S, D]`` -> ``[B, S, D]`` (``memory_bias``: see :class:`CrossAttention`)."""
        if self.training and self.drop.p > 0:
            x = x + self.drop(self.self_attn(self.norm1(x), cache, offset))
            x = x + self.drop(self.cross_attn(self.norm2(x), memory, memory_bias, cache))
            return x + self.drop(self.ff(self.norm3(x)))
        # inference: no dropout module calls (each decoding step runs this n_layers times)
        x = x + self.self_attn(self.norm1(x), cache, offset)
        x = x + self.cross_attn(self.norm2(x), memory, memory_bias, cache)
        return x + self.ff(self.norm3(x))


def sinusoidal_positions(start: int, length: int, dim: int, device: torch.device) -> torch.Tensor:
    """Sinusoidal embeddings ``[length, dim]`` of positions ``start .. start+length-1``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=device, dtype=torch.float32) / half)
    pos = torch.arange(start, start + length, device=device, dtype=torch.float32)
    angles = pos[:, None] * freqs[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
