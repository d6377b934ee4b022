"""Autoregressive generation of codes: KV cache, classifier-free guidance, prompts, sliding windows.

:func:`generate_codes` is the loop the pipeline calls. A generation longer than the model's training window
runs in chunks: each later chunk is primed with the last ``window - stride`` frames generated so far (the same
way an audio prompt is), so arbitrary durations work at a cost that grows linearly with the duration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from soundgen.errors import CancelledError
from soundgen.lm.model import LMModel, Memory, StepPlan
from soundgen.lm.patterns import build_delay_pattern, pattern_length, revert_delay_pattern
from soundgen.lm.sampling import apply_cfg, sample_tokens
from soundgen.lm.sampling_params import SamplingParams

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]

DECODE_THREADS = 1
"""Intra-op CPU threads for the decoding steps (the default of :func:`generate_codes`).

A step is a few hundred small ops (GEMMs of 2B rows, layer norms of ``[2B, D]``): handing them to a second
thread costs more than it gains. Measured on the 2-core dev machine (load average 4-5, torch 2.13,
OMP_WAIT_POLICY=PASSIVE): each such op ran 1.5-3.5x slower with 2 threads than with 1, and a step of the
default model 25-35 % slower; a MusicGen-small-sized model was no faster with 2 either. Prefills (many rows)
keep torch's setting.
"""


@dataclass
class Chunk:
    """One window of a generation: ``context`` frames already known, ``new`` frames to generate."""

    context: int
    new: int


@dataclass
class _Loop:
    """Bookkeeping shared by the chunks of one generation."""

    total: int
    progress: ProgressFn | None
    should_cancel: CancelFn | None
    done: int = 0

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    def check(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise CancelledError(f"generation cancelled after {self.done} of {self.total} steps")


def plan_chunks(prompt_frames: int, new_frames: int, window: int, stride: int) -> list[Chunk]:
    """Split a generation into windows of at most ``window`` frames.

    Args:
        prompt_frames: frames known before generation starts (an audio prompt).
        new_frames: frames to generate.
        window: most frames the model sees at once (its training window).
        stride: new frames per window once the window is full (``1 <= stride < window``).

    Returns:
        The chunks, in order; their ``new`` add up to ``new_frames``.
    """
    if not 1 <= stride < window:
        raise ValueError(f"stride must be in [1, {window}), got {stride}")
    chunks: list[Chunk] = []
    have, left = prompt_frames, new_frames
    while left > 0:
        if have + left <= window:
            context = have
        else:
            context = min(have, window - stride)
        new = min(left, window - context)
        chunks.append(Chunk(context, new))
        have, left = have + new, left - new
    return chunks


def steps_of(chunks: list[Chunk], n_codebooks: int) -> int:
    """Decoding steps of a plan (each chunk: its new frames plus K - 1 steps to finish the delayed codebooks)."""
    return sum(c.new + n_codebooks - 1 for c in chunks)


@torch.inference_mode()
def generate_codes(
    lm: LMModel,
    memory: Memory,
    n_frames: int,
    params: SamplingParams,
    *,
    prompt: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    use_cache: bool = True,
    stride: int | None = None,
    force_cfg_batch: bool = False,
    threads: int | None = DECODE_THREADS,
    negative: Memory | None = None,
) -> torch.Tensor:
    """Generate ``n_frames`` frames of codes after an optional prompt.

    Args:
        lm: the model (eval mode).
        memory: conditional cross-attention memory, batch B.
        n_frames: frames to generate.
        params: sampling parameters (guidance included).
        prompt: ``[B, K, P]`` known codes to continue, or None.
        generator: random generator; the same seed gives the same codes.
        progress: called as ``progress(step, total_steps)`` after every decoding step.
        should_cancel: checked before every step; True raises :class:`CancelledError`.
        use_cache: prefill a KV cache and decode with :meth:`LMModel.step` (False recomputes the whole prefix
            each step: the reference path, equal up to float rounding and much slower).
        stride: new frames per window beyond the training window (default: half the window).
        force_cfg_batch: run the unconditional half even when ``cfg_coef == 1`` (for tests).
        threads: intra-op CPU threads for the single decoding steps (see :data:`DECODE_THREADS`); None keeps
            torch's setting. Restored afterwards.
        negative: memory of a negative prompt, batch B: guidance steers away from it instead of from the empty
            condition (its logits take the unconditional branch's place); None guides against the null token.

    Returns:
        ``[B, K, P + n_frames]`` int64 codes (prompt first).
    """
    k = lm.cfg.n_codebooks
    b = memory.tokens.shape[0]
    codes = prompt.to(lm.device).long() if prompt is not None else torch.zeros(b, k, 0, dtype=torch.long)
    codes = codes.to(lm.device)
    window = lm.cfg.max_frames
    chunks = plan_chunks(codes.shape[-1], n_frames, window, stride or max(1, window // 2))
    loop = _Loop(steps_of(chunks, k), progress, should_cancel)
    guided = params.cfg_coef != 1.0 or force_cfg_batch
    if guided:
        memory = _guidance_pair(memory, negative if negative is not None else lm.null_memory(b))
    plan = lm.step_plan(memory) if use_cache else None
    for chunk in chunks:
        context = codes[..., codes.shape[-1] - chunk.context :]
        new = _generate_chunk(lm, memory, plan, context, chunk.new, params, guided, generator, loop, threads)
        codes = torch.cat([codes, new], dim=-1)
    return codes


def _guidance_pair(cond: Memory, uncond: Memory) -> Memory:
    """One memory of batch 2B: the conditional rows, then the rows guidance steers away from, each padded with
    hidden positions to the longer length ``M``. Returns ``[2B, M, D]`` tokens."""
    if cond.tokens.shape[0] != uncond.tokens.shape[0]:
        raise ValueError(f"the negative memory has batch {uncond.tokens.shape[0]}, the prompts {cond.tokens.shape[0]}")
    m = max(cond.tokens.shape[1], uncond.tokens.shape[1])

    def padded(x: Memory) -> tuple[torch.Tensor, torch.Tensor]:
        pad = m - x.tokens.shape[1]
        tokens = torch.nn.functional.pad(x.tokens, (0, 0, 0, pad))
        return tokens.to(cond.tokens.dtype), torch.nn.functional.pad(x.mask, (0, pad), value=False)

    (ct, cm), (ut, um) = padded(cond), padded(uncond)
    return Memory(torch.cat([ct, ut], dim=0), torch.cat([cm, um], dim=0))


def _generate_chunk(
    lm: LMModel,
    memory: Memory,
    plan: StepPlan | None,
    context: torch.Tensor,
    n_new: int,
    params: SamplingParams,
    guided: bool,
    generator: torch.Generator | None,
    loop: _Loop,
    threads: int | None,
) -> torch.Tensor:
    """Generate ``n_new`` frames after ``context`` ``[B, K, P]``; returns ``[B, K, n_new]``.

    With a ``plan`` (:meth:`LMModel.step_plan`), the context is prefilled into a KV cache and each step runs
    :meth:`LMModel.step`; without one, every step recomputes the whole prefix (the reference path).
    """
    b, k, p = context.shape
    special = lm.special
    total = p + n_new
    n_steps = pattern_length(total, k)
    padded = torch.nn.functional.pad(context, (0, n_new), value=-1)
    seq = build_delay_pattern(padded, special)  # known codes in place, special elsewhere
    copies = 2 if guided else 1
    state = lm.new_state(b * copies, n_steps) if plan is not None else None
    start = torch.full((b, k, 1), special, dtype=torch.long, device=lm.device)
    if state is not None and p > 0:
        prefix = torch.cat([start, seq[..., : p - 1]], dim=-1)
        lm(prefix.repeat(copies, 1, 1), memory, state, offset=0)
    with _cpu_threads(threads if lm.device.type == "cpu" and plan is not None else None):
        for s in range(p, n_steps):
            loop.check()
            if plan is not None and state is not None:
                inp = start[..., 0] if s == 0 else seq[..., s - 1]
                logits = lm.step(inp.repeat(copies, 1), plan, state, s, params.cfg_coef if guided else None)
            else:
                inp = torch.cat([start, seq[..., :s]], dim=-1)
                logits = lm(inp.repeat(copies, 1, 1), memory)[:, :, -1]
                if guided:
                    logits = apply_cfg(logits[:b], logits[b:], params.cfg_coef)
            drawn = sample_tokens(logits, params, generator)  # [B, K]
            # codebook q holds frame s - q at this step: drawn where that frame is new (p <= s - q < total); the
            # known frames and the empty corners are already in `seq`
            first, last = max(0, s - total + 1), min(k - 1, s - p)
            seq[:, first : last + 1, s] = drawn[:, first : last + 1]
            loop.tick()
    return revert_delay_pattern(seq, total)[..., p:]


@contextmanager
def _cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (None: unchanged), restoring the previous count."""
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
