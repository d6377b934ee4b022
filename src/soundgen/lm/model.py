"""The token language model: K codebook streams in the delay pattern, conditioned on text.

Input: the sum of K codebook embeddings per step (plus sinusoidal positions). Output: K heads of
``codebook_size`` logits per step. Text reaches every block through cross-attention to a memory made of a
learned null token followed by the projected text-encoder embeddings; dropping the condition (training, and
the unconditional half of classifier-free guidance) leaves only the null token visible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from soundgen.lm.conditioners import TextCondition
from soundgen.lm.config import LMConfig
from soundgen.lm.fused_step import StepPlan
from soundgen.lm.patterns import build_delay_pattern, shift_right
from soundgen.lm.step_weights import StepWeights, forget_step_weights, step_weights
from soundgen.lm.transformer import Block, DecodingState, sinusoidal_positions


@dataclass
class Memory:
    """Cross-attention memory.

    Attributes:
        tokens: ``[B, M, D]`` (null token first).
        mask: ``[B, M]`` bool, True where visible.
    """

    tokens: torch.Tensor
    mask: torch.Tensor


@dataclass
class LossResult:
    """Training loss of one batch.

    Attributes:
        loss: scalar mean cross-entropy over the valid positions of every codebook.
        ce: ``[K]`` cross-entropy per codebook.
        lazy_accuracy: the ``[K]`` top-1 accuracy per codebook, or the function computing it (read
            :attr:`accuracy`).
    """

    loss: torch.Tensor
    ce: torch.Tensor
    lazy_accuracy: torch.Tensor | Callable[[], torch.Tensor] = field(repr=False)

    @property
    def accuracy(self) -> torch.Tensor:
        """``[K]`` top-1 accuracy per codebook, computed on first use (an argmax over every logit, which training
        needs only on the steps it logs)."""
        if not isinstance(self.lazy_accuracy, torch.Tensor):
            self.lazy_accuracy = self.lazy_accuracy()
        return self.lazy_accuracy


class LMModel(nn.Module):
    """Decoder-only transformer over K codebooks in the delay pattern, with text cross-attention.

    Args:
        cfg: model shape.
        cond_dim: width of the text encoder's embeddings.
    """

    offsets: torch.Tensor
    fused_steps: bool
    """Whether :meth:`step_plan` runs the decoding step as one TorchScript function (the default: the same ops with
    less overhead each, see :mod:`soundgen.lm.fused_step`). False runs the same function as Python."""

    def __init__(self, cfg: LMConfig, cond_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        k, card, d = cfg.n_codebooks, cfg.codebook_size, cfg.d_model
        self.special = card  # the empty/start token of every codebook
        # One table holding K codebook tables side by side (each card+1 rows): a single lookup per step.
        self.embedding = nn.Embedding(k * (card + 1), d)
        self.register_buffer("offsets", torch.arange(k)[None, :, None] * (card + 1), persistent=False)
        self.cond_proj = nn.Linear(cond_dim, d)
        self.null_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, cfg.n_heads, cfg.ff_mult, cfg.dropout) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(d)
        self.heads = nn.Linear(d, k * card, bias=False)  # K heads of `card` logits, as one matmul
        self._position_table: torch.Tensor | None = None
        self.fused_steps = True
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def dtype(self) -> torch.dtype:
        return self.embedding.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    def memory(self, cond: TextCondition, drop: torch.Tensor | None = None) -> Memory:
        """Build the cross-attention memory.

        Args:
            cond: text embeddings ``[B, L, C]`` and mask ``[B, L]``.
            drop: ``[B]`` bool; True drops that example's text (only the null token stays visible).

        Returns:
            :class:`Memory` with ``[B, 1 + L, D]`` tokens.
        """
        emb = cond.embeddings.to(device=self.device, dtype=self.dtype)
        mask = cond.mask.to(self.device)
        b = emb.shape[0]
        if drop is not None:
            mask = mask & ~drop.to(self.device)[:, None]
        tokens = torch.cat([self.null_token.expand(b, 1, -1), self.cond_proj(emb)], dim=1)
        visible = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=self.device), mask], dim=1)
        return Memory(tokens, visible)

    def null_memory(self, batch: int) -> Memory:
        """The unconditional memory: the null token alone, ``[B, 1, D]``."""
        tokens = self.null_token.expand(batch, 1, -1)
        return Memory(tokens, torch.ones(batch, 1, dtype=torch.bool, device=self.device))

    def forward(
        self, tokens: torch.Tensor, memory: Memory, state: DecodingState | None = None, offset: int = 0
    ) -> torch.Tensor:
        """Next-token logits.

        Args:
            tokens: ``[B, K, S]`` input tokens (pattern shifted right; ``special`` where empty).
            memory: cross-attention memory of batch B.
            state: KV cache; when given, these steps are appended to it at ``offset``.
            offset: position of the first step (for positions and the cache).

        Returns:
            ``[B, K, S, codebook_size]`` logits (float32).
        """
        b, k, s = tokens.shape
        logits = self.heads(self._hidden(tokens, memory, state, offset)).view(b, s, k, self.cfg.codebook_size)
        return logits.permute(0, 2, 1, 3).float()

    def _hidden(
        self, tokens: torch.Tensor, memory: Memory, state: DecodingState | None = None, offset: int = 0
    ) -> torch.Tensor:
        """The heads' input ``[B, S, D]`` (after the final norm) for ``tokens`` ``[B, K, S]``: see :meth:`forward`."""
        s = tokens.shape[-1]
        x = self.embedding(tokens + self.offsets).sum(dim=1)  # [B, S, D]
        x = x + self._positions(offset, s, x)
        bias = self.memory_bias(memory)
        for i, block in enumerate(self.blocks):
            x = block(x, memory.tokens, bias, state.layers[i] if state is not None else None, offset)
        if state is not None:
            state.length = offset + s
        return self.norm(x)

    def memory_bias(self, memory: Memory) -> torch.Tensor:
        """The additive cross-attention mask ``[B, 1, 1, M]`` of ``memory``: 0 where visible, -inf where hidden.

        Additive, in the model's dtype: a boolean mask would be converted by every attention call.
        """
        bias = torch.zeros(memory.mask.shape, dtype=self.dtype, device=self.device)
        return bias.masked_fill(~memory.mask.to(self.device), float("-inf"))[:, None, None, :]

    def step_plan(self, memory: Memory) -> StepPlan:
        """Prepare :meth:`step` for a generation conditioned on ``memory``: the step's weights (:meth:`step_weights`,
        cached) and every block's cross-attention folded into the memory (only this costs anything per generation)."""
        blocks = cast("list[Block]", list(self.blocks))
        return StepPlan.fold(self.step_weights(), blocks, memory.tokens, self.memory_bias(memory), self.fused_steps)

    def step_weights(self) -> StepWeights:
        """The weights of the decoding step (:mod:`soundgen.lm.step_weights`), built once and kept while the weights
        stay the same. On a CPU they are copies of the transformer's matrices: float16-packed (half the bytes of the
        float32 weights, ~12 MB for the default model) where the weights are exact float16 values, else transposed
        float32 (as much again as the weights, ~23 MB).

        The cache notices an optimizer step, ``load_state_dict``, any in-place change through the parameters and
        ``.to()``/``.half()`` (:meth:`_apply`); a change through ``param.data`` goes unseen: call
        :meth:`clear_step_cache` after one.
        """
        return step_weights(self, cast("list[Block]", list(self.blocks)), self.norm, self.heads)

    def clear_step_cache(self) -> None:
        """Forget the cached :meth:`step_weights` (the next plan builds them again)."""
        forget_step_weights(self)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> LMModel:  # type: ignore[override]
        self.clear_step_cache()  # .to(), .half(), .cuda(): new weights
        return cast("LMModel", super()._apply(fn, recurse))

    def step(
        self,
        tokens: torch.Tensor,
        plan: StepPlan,
        state: DecodingState,
        offset: int,
        cfg_coef: float | None = None,
    ) -> torch.Tensor:
        """Next-token logits of one decoding step on top of a KV cache (inference only).

        Computes what ``self(tokens[..., None], memory, state, offset)`` does (up to float rounding), through the
        one step function of :mod:`soundgen.lm.fused_step`.

        Args:
            tokens: ``[B, K]`` the step's input tokens.
            plan: :meth:`step_plan` of this model and memory.
            state: KV cache holding steps ``0 .. offset-1``; this step is written at ``offset``.
            offset: position of the step.
            cfg_coef: classifier-free guidance: the batch is ``B/2`` conditional rows then their ``B/2``
                unconditional ones, and the guided logits (:func:`~soundgen.lm.sampling.apply_cfg` of the two
                halves) come back. The heads are linear, so the guidance is applied to their input: one row per
                sound through the largest matrix instead of two (equal up to float rounding).

        Returns:
            ``[B, K, codebook_size]`` logits (float32); ``[B/2, K, codebook_size]`` with ``cfg_coef``.
        """
        table = self.embedding.weight
        keys, values = [c.k for c in state.layers], [c.v for c in state.layers]
        position = self._positions(offset, 1, table)
        logits = plan(
            tokens, table, self.offsets[..., 0], position, keys, values, offset, cfg_coef, self.cfg.codebook_size
        )
        state.length = offset + 1
        return logits

    def _positions(self, offset: int, length: int, like: torch.Tensor) -> torch.Tensor:
        """Sinusoidal positions ``[length, D]`` from a table grown on demand (a decoding step costs one slice)."""
        table = self._position_table
        stale = table is None or table.dtype != like.dtype or table.device != like.device
        if stale or table is None or table.shape[0] < offset + length:
            size = max(2 * (offset + length), 1024)
            table = sinusoidal_positions(0, size, self.cfg.d_model, like.device).to(like.dtype)
            self._position_table = table
        return table[offset : offset + length]

    def new_state(self, batch: int, capacity: int) -> DecodingState:
        """An empty KV cache for ``batch`` sequences of up to ``capacity`` steps."""
        cfg = self.cfg
        return DecodingState.empty(
            cfg.n_layers, batch, cfg.n_heads, cfg.d_model // cfg.n_heads, capacity, self.device, self.dtype
        )

    def compute_loss(self, codes: torch.Tensor, memory: Memory) -> LossResult:
        """Teacher-forced cross-entropy of a batch of clips.

        Args:
            codes: ``[B, K, T]`` codes; negative values mark padding (masked out of the loss).
            memory: cross-attention memory of batch B.

        Returns:
            :class:`LossResult`; positions holding the special token never count.
        """
        target = build_delay_pattern(codes, self.special)  # [B, K, S]
        hidden = self._hidden(shift_right(target, self.special), memory)  # [B, S, D]
        k, card = self.cfg.n_codebooks, self.cfg.codebook_size
        valid = target != self.special
        counts = valid.sum(dim=(0, 2))  # [K]
        ignored = target.masked_fill(~valid, -100)
        # One codebook at a time: the same products as the heads' single matmul, but every logits-sized tensor
        # (logits, log-probabilities and their gradients) is [B, S, card], a quarter of [B, S, K * card], which the
        # allocator recycles instead of mapping fresh pages each step. Hidden positions are ignored (no weights).
        sums, scores = [], []
        for q, weight in enumerate(self.heads.weight.view(k, card, -1).unbind(0)):
            logits = F.linear(hidden, weight).float()  # [B, S, card]
            sums.append(
                F.cross_entropy(logits.view(-1, card), ignored[:, q].reshape(-1), ignore_index=-100, reduction="sum")
            )
            scores.append(logits.detach())
        ce_sum = torch.stack(sums)  # [K]
        ce = ce_sum.detach() / counts.clamp(min=1)
        loss = ce_sum.sum() / counts.sum().clamp(min=1)

        def accuracy() -> torch.Tensor:
            predicted = torch.stack([x.argmax(-1) for x in scores], dim=1)  # [B, K, S]
            return ((predicted == target) & valid).sum(dim=(0, 2)) / counts.clamp(min=1)

        return LossResult(loss, ce, accuracy)
