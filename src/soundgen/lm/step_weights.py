"""The weights of the decoding step, laid out for products with a few rows, and their cache.

On a CPU a decoding step of a small model is bound by reading the weights and by per-op overhead, not by
arithmetic: each of its matrix products has two or so rows (the sounds of a batch, twice with guidance). The step
(:mod:`soundgen.lm.fused_step`) therefore multiplies by copies of the transformer's matrices laid out for that:
float16-packed for fbgemm where every float32 value is an exact float16 value (a model stored in float16, as
exported models are: lossless, half the bytes, :func:`pack_half`), else float32 laid out for MKL
(:func:`transposed`). Both compute the same products up to summation order.

Packing costs ~20-150 ms for the default model, so :func:`step_weights` keeps one set per model while its weights
stay the same.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from soundgen.lm.transformer import Block


@dataclass
class StepWeights:
    """Every weight of the decoding step, in the flat lists that :func:`soundgen.lm.fused_step._step` takes.

    A snapshot: build it again after the weights change (:func:`step_weights` does).

    Attributes:
        matrices: per block ``qkv`` ``[D, 3D]``, ``self_out`` ``[D, D]``, ``ff_in`` ``[D, F]``, ``ff_out``
            ``[F, D]`` (each from :func:`step_matrix`), then the output heads ``[D, K * codebook_size]``.
        halves: for each matrix, whether it is fbgemm-packed float16 (else an ``[in, out]`` tensor).
        vectors: per block the three layer norms' ``(weight, bias)`` and the two feed-forward biases ``[F]``,
            ``[D]``; then the final norm's weight and bias.
        n_heads: self-attention heads of every block.
        key: what the weights were built from (every parameter's storage and version counter), or None.
    """

    matrices: list[torch.Tensor]
    halves: list[bool]
    vectors: list[torch.Tensor]
    n_heads: int
    key: Hashable = None


def step_matrix(linear: nn.Linear) -> tuple[torch.Tensor, bool]:
    """``linear``'s weight (no bias) laid out for the step: ``(matrix, is fbgemm-packed float16)``."""
    packed = pack_half(linear)
    return (packed, True) if packed is not None else (transposed(linear), False)


def pack_half(linear: nn.Linear) -> torch.Tensor | None:
    """``linear``'s weight packed for fbgemm's float16-weight, float32-activation GEMM, or None where that would
    not be exact or is not available: weights other than float32 on a CPU, any value that float16 does not hold
    exactly, or a torch or CPU without the kernel (it needs AVX2; the packing functions may leave torch some day).

    For the few rows of a decoding step this GEMM is ~3x faster than MKL's float32 GEMM on an AVX2 CPU (measured
    on the 2-core dev machine, torch 2.13): it reads half the bytes and multiplies in float32.
    """
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
    return packed


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


def build_step_weights(blocks: Sequence[Block], norm: nn.LayerNorm, heads: nn.Linear) -> StepWeights:
    """The step's weights of a stack of ``blocks``, its final ``norm`` and output ``heads`` (no bias)."""
    pairs: list[tuple[torch.Tensor, bool]] = []
    vectors: list[torch.Tensor] = []
    for block in blocks:
        ff_in, ff_out = block.ff[0], block.ff[2]
        assert isinstance(ff_in, nn.Linear) and isinstance(ff_out, nn.Linear)
        pairs += [step_matrix(m) for m in (block.self_attn.qkv, block.self_attn.out, ff_in, ff_out)]
        for n in (block.norm1, block.norm2, block.norm3):
            vectors += [n.weight.detach(), n.bias.detach()]
        vectors += [ff_in.bias.detach(), ff_out.bias.detach()]
    pairs.append(step_matrix(heads))
    vectors += [norm.weight.detach(), norm.bias.detach()]
    n_heads = {block.self_attn.n_heads for block in blocks}
    assert len(n_heads) == 1, "every block has the same number of heads"
    return StepWeights([m for m, _ in pairs], [h for _, h in pairs], vectors, n_heads.pop())


_CACHE: weakref.WeakKeyDictionary[nn.Module, StepWeights] = weakref.WeakKeyDictionary()
"""The step weights of each model, outside the modules so that copies and pickles never carry them."""


def step_weights(model: nn.Module, blocks: Sequence[Block], norm: nn.LayerNorm, heads: nn.Linear) -> StepWeights:
    """:func:`build_step_weights` of ``model``'s parts, built once and kept while its weights stay the same.

    The cache notices an optimizer step, ``load_state_dict`` and any in-place change through the parameters (their
    version counters) and a move or cast (new storage); a change through ``param.data`` goes unseen: call
    :func:`forget_step_weights` after one.
    """
    key = _weights_key(model)
    cached = _CACHE.get(model)
    if cached is not None and key is not None and cached.key == key:
        return cached
    weights = build_step_weights(blocks, norm, heads)
    if key is not None:
        weights.key = key
        _CACHE[model] = weights
    return weights


def forget_step_weights(model: nn.Module) -> None:
    """Forget ``model``'s cached step weights (the next :func:`step_weights` builds them again)."""
    _CACHE.pop(model, None)


def _weights_key(model: nn.Module) -> Hashable:
    """What identifies ``model``'s current weights (None when they cannot be told apart: inference tensors keep no
    version counter)."""
    try:
        return tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in model.parameters())
    except RuntimeError:
        return None
