"""The one decoding step (soundgen.lm.fused_step): compiled by TorchScript, against the same function as Python."""

from __future__ import annotations

import pytest
import torch

from soundgen.lm import fused_step
from soundgen.lm.conditioners import HashedConditioner
from soundgen.lm.config import LMConfig
from soundgen.lm.generate import generate_codes
from soundgen.lm.model import LMModel, Memory
from soundgen.lm.patterns import build_delay_pattern, shift_right
from soundgen.lm.sampling_params import SamplingParams

needs_script = pytest.mark.skipif(fused_step.scripted() is None, reason="TorchScript unavailable or switched off")


def _model(half_exact: bool, seed: int = 0) -> tuple[LMModel, HashedConditioner]:
    torch.manual_seed(seed)
    cfg = LMConfig.tiny()
    cond = HashedConditioner(cfg.text)
    lm = LMModel(cfg, cond.dim).eval()
    with torch.no_grad():  # make the text matter, so that guidance acts
        lm.null_token.normal_(std=1.0)
        lm.cond_proj.weight.normal_(std=1.0)
    if half_exact:  # float32 weights holding float16 values, as an exported model loads
        lm = lm.half().float()
    return lm, cond


def _cfg_memory(lm: LMModel, memory: Memory) -> Memory:
    null, pad = lm.null_memory(memory.tokens.shape[0]), memory.tokens.shape[1] - 1
    return Memory(
        torch.cat([memory.tokens, torch.nn.functional.pad(null.tokens, (0, 0, 0, pad))]),
        torch.cat([memory.mask, torch.nn.functional.pad(null.mask, (0, pad), value=False)]),
    )


def _step_logits(lm: LMModel, memory: Memory, inp: torch.Tensor, cfg_coef: float | None) -> torch.Tensor:
    """Logits of every step after a 2-step prefill, through :meth:`LMModel.step` with the model's setting."""
    plan = lm.step_plan(memory)
    state = lm.new_state(inp.shape[0], inp.shape[-1])
    lm(inp[..., :2], memory, state, offset=0)
    out = [lm.step(inp[..., s], plan, state, s, cfg_coef) for s in range(2, inp.shape[-1])]
    assert state.length == inp.shape[-1]
    return torch.stack(out, dim=2)


@needs_script
@pytest.mark.parametrize("half_exact", [True, False])
@pytest.mark.parametrize("cfg_coef", [None, 3.0])
def test_the_scripted_step_equals_the_python_step(half_exact: bool, cfg_coef: float | None) -> None:
    lm, cond = _model(half_exact, seed=3)
    memory = lm.memory(cond.encode(["a dog barking", "rain on a tin roof"]))
    codes = torch.randint(0, lm.cfg.codebook_size, (2, lm.cfg.n_codebooks, 10))
    inp = shift_right(build_delay_pattern(codes, lm.special), lm.special)
    if cfg_coef is not None:
        memory, inp = _cfg_memory(lm, memory), inp.repeat(2, 1, 1)
    with torch.inference_mode():
        lm.fused_steps = True
        plan = lm.step_plan(memory)
        fused = _step_logits(lm, memory, inp, cfg_coef)
        lm.fused_steps = False
        python = lm.step_plan(memory)
        assert not python.scripted and python.run is fused_step._step  # the fallback is the same function
        eager = _step_logits(lm, memory, inp, cfg_coef)
        full = lm(inp, memory)[..., 2:, :]
    assert plan.scripted
    assert all(plan.weights.halves) == half_exact  # the exported-model kernel is the one being checked
    assert fused.shape == eager.shape == (2, lm.cfg.n_codebooks, inp.shape[-1] - 2, lm.cfg.codebook_size)
    if half_exact:  # exported models: the same kernels on the same inputs, bit for bit
        assert torch.equal(fused, eager)
    else:  # MKL's float32 GEMM: the last bit may differ (seen: 1.5e-7 on logits of ~0.4)
        torch.testing.assert_close(fused, eager, rtol=1e-6, atol=1e-6)
    if cfg_coef is None:  # and both equal the full forward up to rounding
        torch.testing.assert_close(fused, full, rtol=1e-4, atol=1e-4)


@needs_script
def test_generation_with_the_fused_step_draws_the_same_codes() -> None:
    lm, cond = _model(half_exact=True, seed=5)
    memory = lm.memory(cond.encode(["thunder"]))
    params = SamplingParams(temperature=1.0, top_k=20, cfg_coef=2.5)
    runs = []
    with torch.inference_mode():
        for fused in (True, False):
            lm.fused_steps = fused
            runs.append(generate_codes(lm, memory, 30, params, generator=torch.Generator().manual_seed(7)))
    assert runs[0].shape == (1, lm.cfg.n_codebooks, 30)
    assert torch.equal(runs[0], runs[1])


@needs_script
def test_the_environment_switch_turns_the_fused_step_off(monkeypatch: pytest.MonkeyPatch) -> None:
    lm, cond = _model(half_exact=True)
    memory = lm.memory(cond.encode(["wind"]))
    monkeypatch.setenv(fused_step.ENV_SWITCH, "0")
    fused_step.scripted.cache_clear()
    try:
        with torch.inference_mode():
            assert fused_step.scripted() is None
            assert not lm.step_plan(memory).scripted
    finally:
        monkeypatch.delenv(fused_step.ENV_SWITCH)
        fused_step.scripted.cache_clear()
    assert fused_step.scripted() is not None
