"""Pre-norm transformer decoder blocks with causal self-attention, cross-attention and a KV cache.

Attention goes through :func:`torch.nn.functional.scaled_dot_product_attention`. The self-attention cache is
preallocated for the whole sequence and written in place, so a decoding step costs no concatenation; the
cross-attention keys and values of the (fixed) text memory are computed once per generation.

Single-step decoding has its own path (:meth:`Block.step` with :class:`StepWeights` and :class:`CrossStep`): on
a CPU a decoding step of a small model is bound by reading the weights and by per-op overhead, not by
arithmetic. The step path works on ``[B, D]`` rows, calls no submodules, and multiplies by weights laid out for a
GEMM with two or so rows: float16-packed for fbgemm when the float32 weights are exact float16 values (lossless,
half the bytes: :class:`HalfPacked`), else float32 for MKL (:func:`transposed`). Its cross-attention is folded
into the fixed text memory: the query projection goes into the keys and the output projection into the values,
once per generation, so a step's cross-attention is two small batched products over ``H * M`` columns instead of
two ``D x D`` products and an attention call.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

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


@dataclass
class StepWeights:
    """One block's weights laid out for :meth:`Block.step` (a snapshot: rebuild it after the weights change).

    Each matrix is a :data:`StepMatrix`: a float tensor (see :func:`transposed`) or int8 weights packed by
    :func:`pack_int8`.

    Attributes:
        norms: ``(weight, bias)`` of the three layer norms.
        qkv: ``[D, 3D]`` self-attention input projection, transposed.
        self_out: ``[D, D]`` self-attention output projection, transposed.
        ff_in: ``[D, F]`` first feed-forward layer, transposed; ``ff_in_bias`` ``[F]``.
        ff_out: ``[F, D]`` second feed-forward layer, transposed; ``ff_out_bias`` ``[D]``.
        n_heads: self-attention heads.
    """

    norms: list[tuple[torch.Tensor, torch.Tensor]]
    qkv: StepMatrix
    self_out: StepMatrix
    ff_in: StepMatrix
    ff_in_bias: torch.Tensor
    ff_out: StepMatrix
    ff_out_bias: torch.Tensor
    n_heads: int


@dataclass
class CrossStep:
    """One block's cross-attention folded into a fixed text memory of batch B and M tokens, for :meth:`Block.step`.

    With ``q = x Wq_h``, ``k = m Wk_h``, ``v = m Wv_h`` per head ``h`` of width ``Dh``, the scores ``q k^T / sqrt(Dh)``
    are ``x (Wq_h k^T / sqrt(Dh))`` and the output ``softmax(.) v Wo_h`` is ``softmax(.) (v Wo_h)``: the bracketed
    matrices are fixed for a generation.

    Attributes:
        keys: ``[B, D, H * M]`` the query projection folded into the scaled keys (head-major columns).
        bias: ``[B, 1, H * M]`` additive mask of the memory, repeated per head (0 visible, -inf hidden).
        values: ``[B, H * M, D]`` the values folded into the output projection.
        n_heads: H.
    """

    keys: torch.Tensor
    bias: torch.Tensor
    values: torch.Tensor
    n_heads: int


StepMatrix = Any
"""A weight of the step path: a ``[in, out]`` float tensor (:func:`transposed`), a :class:`HalfPacked` matrix, or
packed int8 (:func:`pack_int8`)."""

StepFormat = Literal["float32", "int8"]
"""How the step path holds its matrices: ``float32`` (the model's own weights, the default) or ``int8``.

``float32`` keeps every weight's exact value: on a CPU a matrix whose float32 values are all exactly float16 values
(a model stored in float16, as exported models are) goes to fbgemm's float16-weight GEMM (:class:`HalfPacked`),
which reads half the bytes and multiplies in float32, so it computes the same products as the float32 GEMM up to
summation order; any other matrix stays a float32 tensor (:func:`transposed`).

``int8`` (opt-in): per-output-channel int8 weights and per-step dynamic int8 activations through fbgemm's
quantized linear (:func:`pack_int8`); a quarter of the bytes to read per step, at the cost of small logit errors
(tested against float32 with a tolerance).
"""


@dataclass(frozen=True)
class HalfPacked:
    """A matrix whose values are all exact float16 values, packed for fbgemm's float16-weight, float32-activation
    GEMM (:func:`pack_half`): lossless, half the bytes of float32 and, for the few rows of a decoding step, ~3x
    faster than MKL's float32 GEMM on an AVX2 CPU (measured on the 2-core dev machine, torch 2.13).

    Attributes:
        packed: fbgemm's opaque packed matrix.
        out_features: columns of the product.
    """

    packed: torch.Tensor
    out_features: int


def step_matrix(linear: nn.Linear, fmt: StepFormat = "float32") -> StepMatrix:
    """``linear``'s weight (no bias) laid out for the step path in format ``fmt``."""
    if fmt == "int8":
        return pack_int8(linear)
    return pack_half(linear) or transposed(linear)


def pack_half(linear: nn.Linear) -> HalfPacked | None:
    """``linear``'s weight packed for fbgemm's float16-weight GEMM, or None where that would not be exact or is not
    available: weights other than float32 on a CPU, any value that float16 does not hold exactly, or a torch or CPU
    without the kernel (it needs AVX2; the packing functions may leave torch some day)."""
    weight = linear.weight.detach()
    if weight.device.type != "cpu" or weight.dtype != torch.float32 or weight.dim() != 2:
        return None
    if not torch.equal(weight.half().float(), weight):
        return None
    try:
        with warnings.catch_warnings():  # deprecation notices, issued once per process
            warnings.simplefilter("ignore")
            packed = torch.fbgemm_pack_gemm_matrix_fp16(weight.contiguous())
            probe = torch.ones(1, weight.shape[1])
            check = torch.fbgemm_linear_fp16_weight_fp32_activation(probe, packed, None)
    except (AttributeError, RuntimeError):
        return None
    if check.shape != (1, weight.shape[0]) or not torch.allclose(check[0], weight.sum(dim=1), rtol=1e-4, atol=1e-4):
        return None
    return HalfPacked(packed, weight.shape[0])


def pack_int8(linear: nn.Linear) -> StepMatrix:
    """``linear``'s weight (no bias) as per-output-channel symmetric int8, packed for fbgemm's dynamic linear.

    Raises:
        RuntimeError: the weights are not float32 on a CPU (the only case fbgemm handles).
    """
    weight = linear.weight.detach()
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        raise RuntimeError(f"int8 step weights need float32 weights on a CPU, got {weight.dtype} on {weight.device}")
    scale = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
    zero = torch.zeros(weight.shape[0], dtype=torch.long)
    with warnings.catch_warnings():  # the quantized tensor API warns of its deprecation on every call
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(weight, scale, zero, 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(q, None)


def step_linear(
    x: torch.Tensor, w: StepMatrix, *, bias: torch.Tensor | None = None, add: torch.Tensor | None = None
) -> torch.Tensor:
    """``x @ w + bias + add`` (``x`` ``[N, in]``; ``bias`` ``[out]`` and ``add`` ``[N, out]`` optional), for any kind
    of :data:`StepMatrix`."""
    if isinstance(w, HalfPacked):
        y = torch.fbgemm_linear_fp16_weight_fp32_activation(x, w.packed, bias)
        return y if add is None else y.add_(add)
    if isinstance(w, torch.Tensor):
        if add is None:
            return torch.mm(x, w) if bias is None else torch.addmm(bias, x, w)
        y = torch.addmm(add, x, w)
        return y if bias is None else y.add_(bias)
    y = torch.ops.quantized.linear_dynamic(x, w, True)  # reduce_range: fbgemm on AVX2 saturates
    if bias is not None:
        y = y.add_(bias)
    return y if add is None else y.add_(add)


def transposed(linear: nn.Linear) -> torch.Tensor:
    """``linear``'s weight as ``[in, out]``, for ``x @ w`` with few rows of ``x``.

    On a CPU in float32 a contiguous copy when ``in <= out``: MKL multiplies two rows by it 1.5-2x faster than by
    the transposed view; for a narrowing layer (``in > out``, the second feed-forward layer) the transposed view
    of the ``[out, in]`` weight is the faster one (1.3-1.6x), so no copy. Otherwise the transposed view (no copy):
    bfloat16 and float16 GEMMs on an AVX2 CPU are ~10x *slower* with the contiguous copy, and on a GPU the layout
    barely matters. (Measured on a 2-core AVX2 machine, torch 2.13, weights not in cache.)
    """
    weight = linear.weight.detach()
    if weight.device.type == "cpu" and weight.dtype == torch.float32 and weight.shape[1] <= weight.shape[0]:
        return weight.t().contiguous()
    return weight.t()


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

    def fold(self, memory: torch.Tensor, memory_bias: torch.Tensor) -> CrossStep:
        """This attention over the fixed ``memory`` ``[B, M, D]`` (mask ``memory_bias`` ``[B, 1, 1, M]``), folded
        for :meth:`Block.step` (see :class:`CrossStep`)."""
        b, m, d = memory.shape
        h = self.n_heads
        dh = d // h
        k, v = self.memory_kv(memory)  # [B, H, M, Dh]
        wq = self.q.weight.detach().view(h, dh, d)  # [H, Dh, D]: q_h = x @ wq[h].T
        wo = self.out.weight.detach().view(d, h, dh).transpose(0, 1)  # [H, D, Dh]: out = sum_h y_h @ wo[h].T
        keys = torch.einsum("hed,bhme->bdhm", wq, k) / math.sqrt(dh)
        values = torch.einsum("bhme,hde->bhmd", v, wo)
        bias = memory_bias.reshape(b, 1, 1, m).expand(b, 1, h, m)
        return CrossStep(
            keys.reshape(b, d, h * m).contiguous(), bias.reshape(b, 1, h * m), values.reshape(b, h * m, d), h
        )

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

    def step_weights(self, fmt: StepFormat = "float32") -> StepWeights:
        """This block's weights laid out for :meth:`step`, its matrices in format ``fmt`` (:data:`StepFormat`)."""
        norms = [(n.weight.detach(), n.bias.detach()) for n in (self.norm1, self.norm2, self.norm3)]
        ff_in, ff_out = self.ff[0], self.ff[2]
        assert isinstance(ff_in, nn.Linear) and isinstance(ff_out, nn.Linear)
        return StepWeights(
            norms,
            step_matrix(self.self_attn.qkv, fmt),
            step_matrix(self.self_attn.out, fmt),
            step_matrix(ff_in, fmt),
            ff_in.bias.detach(),
            step_matrix(ff_out, fmt),
            ff_out.bias.detach(),
            self.self_attn.n_heads,
        )

    def step(self, x: torch.Tensor, w: StepWeights, cache: LayerCache, offset: int, cross: CrossStep) -> torch.Tensor:
        """One decoding step (inference only): the same function as :meth:`forward` on one step.

        Args:
            x: ``[B, D]`` the step's input.
            w: :meth:`step_weights` of this block.
            cache: the block's self-attention cache, holding steps ``0 .. offset-1``.
            offset: position of this step; its keys and values are written there.
            cross: the cross-attention folded into the text memory (:meth:`CrossAttention.fold`).

        Returns:
            ``[B, D]``.
        """
        b, d = x.shape
        h = w.n_heads
        dims = (d,)
        (w1, b1), (w2, b2), (w3, b3) = w.norms
        q, k, v = step_linear(torch.layer_norm(x, dims, w1, b1), w.qkv).view(b, 3, h, 1, d // h).unbind(1)
        end = offset + 1
        cache.k[:, :, offset:end] = k
        cache.v[:, :, offset:end] = v
        y = F.scaled_dot_product_attention(q, cache.k[:, :, :end], cache.v[:, :, :end])
        x = step_linear(y.view(b, d), w.self_out, add=x)
        scores = torch.baddbmm(cross.bias, torch.layer_norm(x, dims, w2, b2).unsqueeze(1), cross.keys)  # [B, 1, H*M]
        weights = torch.softmax(scores.view(b, cross.n_heads, -1), dim=-1).view(b, 1, -1)
        x = torch.baddbmm(x.unsqueeze(1), weights, cross.values).view(b, d)
        hidden = F.gelu(step_linear(torch.layer_norm(x, dims, w3, b3), w.ff_in, bias=w.ff_in_bias))
        return step_linear(hidden, w.ff_out, bias=w.ff_out_bias, add=x)


def sinusoidal_positions(start: int, length: int, dim: int, device: torch.device) -> torch.Tensor:
    """Sinusoidal embeddings ``[length, dim]`` of positions ``start .. start+length-1``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=device, dtype=torch.float32) / half)
    pos = torch.arange(start, start + length, device=device, dtype=torch.float32)
    angles = pos[:, None] * freqs[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
