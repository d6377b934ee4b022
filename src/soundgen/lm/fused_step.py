"""One decoding step of the whole model as a single TorchScript function.

A decoding step of the default model is ~200 small ops on ``[2, 256]`` rows; on a CPU most of its time is spent
getting from one op to the next in Python (argument parsing, dispatch, dataclass attribute reads), not in the
kernels. :func:`fused_step` runs the same step as :meth:`soundgen.lm.model.LMModel.step` (embedding lookup, every
:meth:`~soundgen.lm.transformer.Block.step`, final norm, guidance, heads) in TorchScript's interpreter, which calls
the same kernels in the same order with less overhead per op. On float16-packed matrices (every exported model)
the logits are bit-identical to the eager step path (tested); on float32 matrices MKL's GEMM may round the last
bit differently (seen: 1.5e-7 on logits of ~0.4; tested), and a bfloat16 model agrees up to bfloat16 rounding, as
its step path agrees with its full forward.

Measured on the 2-core dev machine (torch 2.13, 1 thread, the default model, 510 steps): the six blocks
1.81-1.99 ms per step scripted against 2.18-2.44 ms eager. See ``benchmarks/generation_speed.py``
(``--step-script off`` times the eager path in the same run).

TorchScript compiles the function on first use (~0.1-0.3 s, once per process). Where it cannot (a torch without
TorchScript, or ``SOUNDGEN_STEP_SCRIPT=0`` in the environment), :func:`scripted` returns None and the model keeps
its eager step path. int8 steps (opt-in) always stay eager: their packed matrices are not tensors.

torch 2.13 marks ``torch.jit.script`` deprecated in favour of ``torch.compile``. ``torch.compile`` is not used here:
its CPU backend needs a C++ compiler at run time and tens of seconds of compilation on a small CPU, which a one-shot
``soundgen generate`` would pay every time. If TorchScript leaves torch, :func:`scripted` returns None and decoding
falls back to the eager path, a little slower and otherwise the same.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from soundgen.lm.transformer import CrossStep, HalfPacked, StepMatrix, StepWeights

log = logging.getLogger(__name__)

ENV_SWITCH = "SOUNDGEN_STEP_SCRIPT"
"""Environment variable: ``0`` keeps decoding steps on the eager path (for comparisons and debugging)."""


def _matmul(
    x: torch.Tensor,
    w: torch.Tensor,
    half: bool,
    bias: Optional[torch.Tensor],  # noqa: UP045
    add: Optional[torch.Tensor],  # noqa: UP045
) -> torch.Tensor:
    """``x @ w + bias + add``, ``w`` fbgemm-packed float16 (``half``) or an ``[in, out]`` tensor: the same ops in
    the same order as :func:`soundgen.lm.transformer.step_linear`."""
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
    """The arithmetic of :meth:`LMModel.step` on flat lists (see :class:`FusedStep` for their layout)."""
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
    except Exception as exc:  # noqa: BLE001  # any failure only costs speed: the eager step path stays
        log.info("decoding steps stay eager: TorchScript could not compile them (%s)", exc)
        return None


def _flat(matrix: StepMatrix) -> tuple[torch.Tensor, bool] | None:
    """A step matrix as (tensor, is fbgemm-packed float16), or None for a kind the function does not take."""
    if isinstance(matrix, HalfPacked):
        return matrix.packed, True
    if isinstance(matrix, torch.Tensor):
        return matrix, False
    return None


@dataclass
class FusedStep:
    """A :class:`~soundgen.lm.model.StepPlan` flattened into the lists :func:`_step` takes.

    Attributes:
        matrices: per block ``qkv, self_out, ff_in, ff_out``, then the heads.
        halves: for each matrix, whether it is fbgemm-packed float16.
        vectors: per block the three norms' ``(weight, bias)`` then the two feed-forward biases, then the final
            norm's weight and bias.
        cross_keys, cross_bias, cross_values: each block's :class:`CrossStep` tensors.
        n_heads: self-attention heads; cross_heads: cross-attention heads.
        run: the compiled :func:`_step`.
    """

    matrices: list[torch.Tensor]
    halves: list[bool]
    vectors: list[torch.Tensor]
    cross_keys: list[torch.Tensor]
    cross_bias: list[torch.Tensor]
    cross_values: list[torch.Tensor]
    n_heads: int
    cross_heads: int
    run: Callable[..., torch.Tensor]

    @classmethod
    def build(
        cls,
        blocks: list[StepWeights],
        cross: list[CrossStep],
        norm: tuple[torch.Tensor, torch.Tensor],
        heads: StepMatrix,
    ) -> FusedStep | None:
        """Flatten a plan's parts; None when the function cannot run them (int8 matrices, no blocks, no
        TorchScript)."""
        run = scripted()
        if run is None or not blocks:
            return None
        flat: list[tuple[torch.Tensor, bool] | None] = []
        vectors: list[torch.Tensor] = []
        for w in blocks:
            flat += [_flat(w.qkv), _flat(w.self_out), _flat(w.ff_in), _flat(w.ff_out)]
            for weight, bias in w.norms:
                vectors += [weight, bias]
            vectors += [w.ff_in_bias, w.ff_out_bias]
        flat.append(_flat(heads))
        vectors += list(norm)
        pairs = [f for f in flat if f is not None]
        one_shape = len({w.n_heads for w in blocks}) == 1 and len({c.n_heads for c in cross}) == 1
        if len(pairs) < len(flat) or not one_shape:
            return None
        return cls(
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            vectors,
            [c.keys for c in cross],
            [c.bias for c in cross],
            [c.values for c in cross],
            blocks[0].n_heads,
            cross[0].n_heads,
            run,
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
        """Logits of one step: see :meth:`soundgen.lm.model.LMModel.step`."""
        return self.run(
            tokens,
            table,
            offsets,
            position,
            self.matrices,
            self.halves,
            self.vectors,
            keys,
            values,
            self.cross_keys,
            self.cross_bias,
            self.cross_values,
            offset,
            self.n_heads,
            self.cross_heads,
            cfg_coef,
            codebook_size,
        )
