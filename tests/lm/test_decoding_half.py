"""The decoding step on float16-exact weights (fbgemm's float16-weight GEMM) and the cache of its weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from soundgen.lm.conditioners import HashedConditioner
from soundgen.lm.config import LMConfig
from soundgen.lm.generate import generate_codes
from soundgen.lm.model import LMModel, Memory
from soundgen.lm.patterns import build_delay_pattern, shift_right
from soundgen.lm.sampling import apply_cfg
from soundgen.lm.sampling_params import SamplingParams
from soundgen.lm.step_weights import pack_half, step_matrix


def _half_exact_model(seed: int = 0) -> tuple[LMModel, HashedConditioner]:
    """A tiny model whose weights are float32 holding float16 values (as a model exported in float16 loads)."""
    torch.manual_seed(seed)
    cfg = LMConfig.tiny()
    cond = HashedConditioner(cfg.text)
    lm = LMModel(cfg, cond.dim).half().float().eval()
    with torch.no_grad():  # make the text matter, so that guidance acts
        lm.null_token.normal_(std=1.0).copy_(lm.null_token.half().float())
        lm.cond_proj.weight.normal_(std=1.0).copy_(lm.cond_proj.weight.half().float())
    return lm, cond


def _kernel_available() -> bool:
    linear = nn.Linear(16, 8, bias=False)
    with torch.no_grad():
        linear.weight.copy_(linear.weight.half().float())
    return pack_half(linear) is not None


needs_kernel = pytest.mark.skipif(not _kernel_available(), reason="no fbgemm float16 GEMM on this torch/CPU")


def _cfg_memory(lm: LMModel, memory: Memory) -> Memory:
    null, pad = lm.null_memory(memory.tokens.shape[0]), memory.tokens.shape[1] - 1
    return Memory(
        torch.cat([memory.tokens, torch.nn.functional.pad(null.tokens, (0, 0, 0, pad))]),
        torch.cat([memory.mask, torch.nn.functional.pad(null.mask, (0, pad), value=False)]),
    )


def _inputs(lm: LMModel, batch: int, frames: int) -> torch.Tensor:
    codes = torch.randint(0, lm.cfg.codebook_size, (batch, lm.cfg.n_codebooks, frames))
    return shift_right(build_delay_pattern(codes, lm.special), lm.special)


def _steps(lm: LMModel, memory: Memory, inp: torch.Tensor, cfg_coef: float | None, prefill: int = 3) -> torch.Tensor:
    """Logits ``[B, K, S - prefill, card]`` of the steps after a prefill, through :meth:`LMModel.step`."""
    plan = lm.step_plan(memory)
    state = lm.new_state(inp.shape[0], inp.shape[-1])
    lm(inp[..., :prefill], memory, state, offset=0)
    steps = [lm.step(inp[..., s], plan, state, s, cfg_coef) for s in range(prefill, inp.shape[-1])]
    return torch.stack(steps, dim=2)


@needs_kernel
def test_half_exact_weights_are_packed_and_the_guided_step_matches_the_full_forward() -> None:
    lm, cond = _half_exact_model(1)
    memory = _cfg_memory(lm, lm.memory(cond.encode(["a dog barking", "rain on a tin roof"])))
    inp = _inputs(lm, 2, 12).repeat(2, 1, 1)
    with torch.inference_mode():
        weights = lm.step_weights()
        full = lm(inp, memory)
        guided = _steps(lm, memory, inp, 3.0)
        plain = _steps(lm, memory, inp, None)
    assert len(weights.halves) == 4 * lm.cfg.n_layers + 1 and all(weights.halves)  # every block's four, the heads
    torch.testing.assert_close(guided, apply_cfg(full[:2], full[2:], 3.0)[:, :, 3:], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(plain, full[:, :, 3:], rtol=1e-4, atol=1e-4)


def test_inexact_weights_stay_float32() -> None:
    linear = nn.Linear(16, 32, bias=False)  # random float32: most values are not float16 values
    assert pack_half(linear) is None
    matrix, half = step_matrix(linear)
    assert not half and matrix.shape == (16, 32)
    with torch.no_grad():
        linear.weight.copy_(linear.weight.half().float())
        linear.weight[3, 5] += 1e-6  # one value that float16 cannot hold
    assert pack_half(linear) is None
    assert pack_half(nn.Linear(16, 32).double()) is None  # only float32 weights


@needs_kernel
def test_without_the_kernel_the_step_path_falls_back_to_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    lm, cond = _half_exact_model(2)
    memory = lm.memory(cond.encode(["thunder far away", "a bell"]))
    inp = _inputs(lm, 2, 10)
    with torch.inference_mode():
        packed = _steps(lm, memory, inp, None)

        def missing(*args: object) -> None:
            raise RuntimeError("no such kernel")

        monkeypatch.setattr(torch, "fbgemm_pack_gemm_matrix_fp16", missing)
        lm.clear_step_cache()
        assert not any(lm.step_weights().halves)
        fallback = _steps(lm, memory, inp, None)
    torch.testing.assert_close(fallback, packed, rtol=1e-4, atol=1e-4)


def test_step_weights_are_cached_until_the_weights_change() -> None:
    lm, cond = _half_exact_model(3)
    memory = lm.memory(cond.encode(["wind", "a door"]))
    inp = _inputs(lm, 2, 9)
    with torch.inference_mode():
        first = lm.step_weights()
        assert lm.step_weights() is first and lm.step_plan(memory).weights is first
    with torch.no_grad():  # an in-place change (as an optimizer step makes)
        lm.blocks[0].ff[2].weight.mul_(2.0)
        lm.heads.weight.neg_()
    with torch.inference_mode():
        changed = lm.step_weights()
        assert changed is not first
        torch.testing.assert_close(_steps(lm, memory, inp, None), lm(inp, memory)[:, :, 3:], rtol=1e-4, atol=1e-4)
    state = {k: v.clone() for k, v in lm.state_dict().items()}
    state["heads.weight"].neg_()
    lm.load_state_dict(state)
    with torch.inference_mode():
        assert lm.step_weights() is not changed
        torch.testing.assert_close(_steps(lm, memory, inp, None), lm(inp, memory)[:, :, 3:], rtol=1e-4, atol=1e-4)
        before = lm.step_weights()
    lm.double()  # .to()/.half()/.double(): new weights, and float16 packing no longer applies
    memory64 = Memory(memory.tokens.double(), memory.mask)
    with torch.inference_mode():
        after = lm.step_weights()
        assert after is not before and not any(after.halves) and after.matrices[-1].dtype == torch.float64
        torch.testing.assert_close(_steps(lm, memory64, inp, None), lm(inp, memory64)[:, :, 3:])


def test_half_exact_generation_with_and_without_cache_and_seeds() -> None:
    lm, cond = _half_exact_model(4)
    memory = lm.memory(cond.encode(["thunder far away", "a bell"]))
    params = SamplingParams(cfg_coef=3.0)

    def run(seed: int, use_cache: bool = True) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return generate_codes(lm, memory, 12, params, generator=g, use_cache=use_cache, stride=None)

    cached = run(0)
    assert torch.equal(cached, run(0))  # the cached matrices give the same codes again
    assert torch.equal(cached, run(0, use_cache=False))
    assert not torch.equal(cached, run(1))
