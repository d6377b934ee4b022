"""The decoding step of the whole model, written once: a TorchScript function, or the same function as Python.

:func:`_step` computes what :meth:`soundgen.lm.model.LMModel.forward` computes for one step on top of a KV cache
(embedding lookup, every block's self-attention, cross-attention and feed-forward, the final norm, guidance, the
heads), on ``[B, D]`` rows and on flat lists of tensors: the weights of :mod:`soundgen.lm.step_weights` and the
cross-attention folded into the text memory once per generation (:meth:`StepPlan.fold`). It is tested against the
full forward up to float rounding.

A decoding step of the default model is ~200 small ops on ``[2, 256]`` rows; on a CPU most of its time is spent
getting from one op to the next in Python (argument parsing, dispatch), not in the kernels. TorchScript's
interpreter calls the same kernels in the same order with less overhead per op. Measured on the 2-core dev machine
(torch 2.13, 1 thread, the default model, 510 steps): the six blocks 1.81-1.99 ms per step scripted against
2.18-2.44 ms for the op-by-op Python path that the fallback replaced (``Block.step``, issue 12).

TorchScript compiles the function on first use (~0.1-0.3 s, once per process). Where it cannot (a torch without
TorchScript, or ``SOUNDGEN_STEP_SCRIPT=0`` in the environment), :func:`scripted` returns None and the step runs the
same function as Python: the one fallback, the same ops in the same order, so the same codes (tested; on float32
matrices MKL's GEMM may round a logit's last bit differently, seen: 1.5e-7 on logits of ~0.4).

torch 2.13 marks ``torch.jit.script`` deprecated in favour of ``torch.compile``. ``torch.compile`` is not used here:
its CPU backend needs a C++ compiler at run time and tens of seconds of compilation on a small CPU, which a one-shot
``soundgen generate`` would pay every time. If TorchScript leaves torch, decoding runs the Python fallback, a little
slower and otherwise the same.

Int8 decoding steps (per-channel int8 weights through fbgemm's dynamic quantised linear) were removed: on the
default model they were 1.6x slower per step than this float16-packed step (2.9 against 1.8 ms at best, medians
3.2 against 2.0 ms over 8 interleaved runs of 250 steps, 2-core dev machine, torch 2.13), lossy, and could not run
in TorchScript.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from soundgen.lm.step_weights import StepWeights
from soundgen.lm.transformer import Block, CrossAttention

log = logging.getLogger(__name__)

ENV_SWITCH = "SOUNDGEN_STEP_SCRIPT"
"""Environment variable: ``0`` runs the decoding step as Python instead of TorchScript (for comparisons and
debugging)."""


def _matmul(
    x: torch.Tensor,
    w: torch.Tensor,
    half: bool,
    bias: Optional[torch.Tensor],  # noqa: UP045
    add: Optional[torch.Tensor],  # noqa: UP045
) -> torch.Tensor:
    """``x @ w + bias + add`` for ``x`` ``[N, in]``, ``w`` fbgemm-packed float16 (``half``) or an ``[in, out]``
    tensor, ``bias`` ``[out]`` and ``add`` ``[N, out]`` optional."""
    if half:
        y = torch.fbgemm_linear_fp16_weight_fp32_activation(x, w, bias)
        return y if add is None else y.add_(add)
    if add is None:
        return torch.mm(x, w) if bias is None else torch.addmm(bias, x, w)
    y = torch.addmm(add, x, w)
    return y if bias is None else y.add_(bias)


def _step(
    tokens: torch.Tensor,
    table: torch.Tensor,
    offsets: torch.Tensor,
    position: torch.Tensor,
    matrices: list[torch.Tensor],
    halves: list[bool],
    vectors: list[torch.Tensor],
    keys: list[torch.Tensor],
    values: list[torch.Tensor],
    cross_keys: list[torch.Tensor],
    cross_bias: list[torch.Tensor],
    cross_values: list[torch.Tensor],
    offset: int,
    n_heads: int,
    cross_heads: int,
    cfg_coef: Optional[float],  # noqa: UP045
    codebook_size: int,
) -> torch.Tensor:
    """Logits of one decoding step (see :meth:`soundgen.lm.model.LMModel.step`).

    Args:
        tokens: ``[B, K]`` the step's input tokens; ``table`` the ``[K * (card + 1), D]`` embedding table and
            ``offsets`` ``[1, K]`` each codebook's first row in it; ``position`` ``[1, D]`` the step's position.
        matrices, halves, vectors: the weights (:class:`~soundgen.lm.step_weights.StepWeights`).
        keys, values: per block the ``[B, H, capacity, Dh]`` self-attention cache; the step is written at
            ``offset``.
        cross_keys, cross_bias, cross_values: per block the folded cross-attention (:class:`StepPlan`).
        n_heads: self-attention heads; ``cross_heads`` cross-attention heads.
        cfg_coef: guidance (the batch is B/2 conditional rows then B/2 rows to steer from), or None.
        codebook_size: logits per codebook.

    Returns:
        ``[B, K, codebook_size]`` float32 logits (``[B/2, ...]`` with ``cfg_coef``).
    """
    b, k = tokens.shape[0], tokens.shape[1]
    x = F.embedding(tokens + offsets, table).sum(dim=1) + position
    d = x.shape[1]
    dims = [d]
    end = offset + 1
    for i in range(len(keys)):
        m, v = 4 * i, 8 * i
        h = torch.layer_norm(x, dims, vectors[v], vectors[v + 1])
        q, key, value = _matmul(h, matrices[m], halves[m], None, None).view(b, 3, n_heads, 1, d // n_heads).unbind(1)
        keys[i][:, :, offset:end] = key
        values[i][:, :, offset:end] = value
        y = F.scaled_dot_product_attention(q, keys[i][:, :, :end], values[i][:, :, :end])
        x = _matmul(y.view(b, d), matrices[m + 1], halves[m + 1], None, x)
        h = torch.layer_norm(x, dims, vectors[v + 2], vectors[v + 3]).unsqueeze(1)
        scores = torch.baddbmm(cross_bias[i], h, cross_keys[i])  # [B, 1, H*M]
        weights = torch.softmax(scores.view(b, cross_heads, -1), dim=-1).view(b, 1, -1)
        x = torch.baddbmm(x.unsqueeze(1), weights, cross_values[i]).view(b, d)
        h = torch.layer_norm(x, dims, vectors[v + 4], vectors[v + 5])
        h = F.gelu(_matmul(h, matrices[m + 2], halves[m + 2], vectors[v + 6], None))
        x = _matmul(h, matrices[m + 3], halves[m + 3], vectors[v + 7], x)
    last = len(vectors) - 2
    x = F.layer_norm(x, dims, vectors[last], vectors[last + 1])
    if cfg_coef is not None:
        b = b // 2
        x = torch.lerp(x[b:], x[:b], cfg_coef)
    last = len(matrices) - 1
    return _matmul(x, matrices[last], halves[last], None, None).view(b, k, codebook_size).float()


@functools.cache
def scripted() -> Callable[..., torch.Tensor] | None:
    """:func:`_step` compiled by TorchScript (once per process), or None where that is off or fails."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in {"0", "false", "off", "no"}:
        return None
    try:
        with warnings.catch_warnings():  # torch 2.13 calls TorchScript deprecated (see the module's docstring)
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.script(_step)  # type: ignore[no-any-return]
    except Exception as exc:  # noqa: BLE001  # any failure only costs speed: the Python fallback stays
        log.info("decoding steps run as Python: TorchScript could not compile them (%s)", exc)
        return None


def fold_cross(
    attn: CrossAttention, memory: torch.Tensor, memory_bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``attn`` over a fixed text memory, folded for the step.

    With ``q = x Wq_h``, ``k = m Wk_h``, ``v = m Wv_h`` per head ``h`` of width ``Dh``, the scores ``q k^T / sqrt(Dh)``
    are ``x (Wq_h k^T / sqrt(Dh))`` and the output ``softmax(.) v Wo_h`` is ``softmax(.) (v Wo_h)``: the bracketed
    matrices are fixed for a generation, so a step's cross-attention is two small batched products over ``H * M``
    columns instead of two ``D x D`` products and an attention call.

    Args:
        attn: the cross-attention of one block.
        memory: ``[B, M, D]`` the text memory; ``memory_bias`` ``[B, 1, 1, M]`` its additive mask.

    Returns:
        ``(keys, bias, values)``: ``[B, D, H * M]`` the query projection folded into the scaled keys (head-major
        columns), ``[B, 1, H * M]`` the mask repeated per head (0 visible, -inf hidden), ``[B, H * M, D]`` the values
        folded into the output projection.
    """
    b, m, d = memory.shape
    h = attn.n_heads
    dh = d // h
    k, v = attn.memory_kv(memory)  # [B, H, M, Dh]
    wq = attn.q.weight.detach().view(h, dh, d)  # [H, Dh, D]: q_h = x @ wq[h].T
    wo = attn.out.weight.detach().view(d, h, dh).transpose(0, 1)  # [H, D, Dh]: out = sum_h y_h @ wo[h].T
    keys = torch.einsum("hed,bhme->bdhm", wq, k) / math.sqrt(dh)
    values = torch.einsum("bhme,hde->bhmd", v, wo)
    bias = memory_bias.reshape(b, 1, 1, m).expand(b, 1, h, m)
    return keys.reshape(b, d, h * m).contiguous(), bias.reshape(b, 1, h * m), values.reshape(b, h * m, d)


@dataclass
class StepPlan:
    """What the decoding step needs for one generation: the model's weights and the cross-attention of every block
    folded into this generation's text memory (:func:`fold_cross`).

    A snapshot of the weights: build a new plan after the model changes (training, ``.to()``).

    Attributes:
        weights: the step's weights (:func:`~soundgen.lm.step_weights.step_weights`, cached across generations).
        cross_keys, cross_bias, cross_values: each block's folded cross-attention.
        cross_heads: cross-attention heads.
        run: :func:`_step`, compiled by TorchScript or as Python.
        scripted: whether ``run`` is the TorchScript function.
    """

    weights: StepWeights
    cross_keys: list[torch.Tensor]
    cross_bias: list[torch.Tensor]
    cross_values: list[torch.Tensor]
    cross_heads: int
    run: Callable[..., torch.Tensor]
    scripted: bool

    @classmethod
    def fold(
        cls,
        weights: StepWeights,
        blocks: Sequence[Block],
        memory: torch.Tensor,
        memory_bias: torch.Tensor,
        script: bool = True,
    ) -> StepPlan:
        """The plan of a generation conditioned on ``memory`` ``[B, M, D]`` (mask ``memory_bias``
        ``[B, 1, 1, M]``); ``script`` runs the TorchScript step where it compiles (else the Python one)."""
        cross = [fold_cross(block.cross_attn, memory, memory_bias) for block in blocks]
        run = scripted() if script else None
        return cls(
            weights,
            [c[0] for c in cross],
            [c[1] for c in cross],
            [c[2] for c in cross],
            blocks[0].cross_attn.n_heads,
            run or _step,
            run is not None,
        )

    def __call__(
        self,
        tokens: torch.Tensor,
        table: torch.Tensor,
        offsets: torch.Tensor,
        position: torch.Tensor,
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        offset: int,
        cfg_coef: float | None,
        codebook_size: int,
    ) -> torch.Tensor:
        """Logits of one step: the arguments of :func:`_step` that are not the plan's."""
        w = self.weights
        return self.run(
            tokens,
            table,
            offsets,
            position,
            w.matrices,
            w.halves,
            w.vectors,
            keys,
            values,
            self.cross_keys,
            self.cross_bias,
            self.cross_values,
            offset,
            w.n_heads,
            self.cross_heads,
            cfg_coef,
            codebook_size,
        )
