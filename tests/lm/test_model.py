"""LM: KV cache equals the full forward, CFG, seeds, overfitting, windows, text encoders."""

from __future__ import annotations

import pytest
import torch

from soundgen.errors import CancelledError, InvalidRequestError
from soundgen.lm.conditioners import HashedConditioner
from soundgen.lm.config import LMConfig
from soundgen.lm.generate import generate_codes, plan_chunks, steps_of
from soundgen.lm.model import LMModel, Memory
from soundgen.lm.patterns import build_delay_pattern, shift_right
from soundgen.lm.sampling import apply_cfg, sample_tokens
from soundgen.lm.sampling_params import SamplingParams


def _model(seed: int = 0, **kw: object) -> tuple[LMModel, HashedConditioner]:
    torch.manual_seed(seed)
    cfg = LMConfig.tiny()
    for key, value in kw.items():
        setattr(cfg, key, value)
    cond = HashedConditioner(cfg.text)
    return LMModel(cfg, cond.dim).eval(), cond


def test_incremental_forward_matches_full_forward() -> None:
    lm, cond = _model()
    memory = lm.memory(cond.encode(["a dog barking", "rain"]))
    codes = torch.randint(0, lm.cfg.codebook_size, (2, lm.cfg.n_codebooks, 20))
    inp = shift_right(build_delay_pattern(codes, lm.special), lm.special)
    full = lm(inp, memory)
    state = lm.new_state(2, inp.shape[-1])
    first = lm(inp[..., :7], memory, state, offset=0)  # prefill
    rest = [lm(inp[..., s : s + 1], memory, state, offset=s) for s in range(7, 12)]
    chunk = lm(inp[..., 12:], memory, state, offset=12)  # several steps on top of a cache
    incremental = torch.cat([first, *rest, chunk], dim=2)
    torch.testing.assert_close(incremental, full, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("prefill", [0, 6])
def test_step_path_matches_full_forward(prefill: int) -> None:
    lm, cond = _model(8)
    memory = lm.memory(cond.encode(["a dog barking", "rain on a tin roof"]))
    codes = torch.randint(0, lm.cfg.codebook_size, (2, lm.cfg.n_codebooks, 14))
    inp = shift_right(build_delay_pattern(codes, lm.special), lm.special)
    with torch.inference_mode():
        full = lm(inp, memory)  # [B, K, S, card]
        plan = lm.step_plan(memory)
        state = lm.new_state(2, inp.shape[-1])
        if prefill:
            lm(inp[..., :prefill], memory, state, offset=0)
        steps = [lm.step(inp[..., s], plan, state, offset=s) for s in range(prefill, inp.shape[-1])]
    assert state.length == inp.shape[-1]
    torch.testing.assert_close(torch.stack(steps, dim=2), full[:, :, prefill:], rtol=1e-4, atol=1e-4)


def _cfg_memory(lm: LMModel, memory: Memory) -> Memory:
    """``memory`` followed by the unconditional memory padded to its length (as :func:`generate_codes` builds)."""
    null, pad = lm.null_memory(memory.tokens.shape[0]), memory.tokens.shape[1] - 1
    return Memory(
        torch.cat([memory.tokens, torch.nn.functional.pad(null.tokens, (0, 0, 0, pad))]),
        torch.cat([memory.mask, torch.nn.functional.pad(null.mask, (0, pad), value=False)]),
    )


def _step_logits(lm: LMModel, memory: Memory, inp: torch.Tensor, cfg_coef: float | None) -> torch.Tensor:
    """Logits ``[B, K, S, card]`` of every step of ``inp`` through :meth:`LMModel.step` (prefill of 3 steps)."""
    plan = lm.step_plan(memory)
    state = lm.new_state(inp.shape[0], inp.shape[-1])
    lm(inp[..., :3], memory, state, offset=0)
    return torch.stack([lm.step(inp[..., s], plan, state, s, cfg_coef) for s in range(3, inp.shape[-1])], dim=2)


def test_guided_step_equals_guidance_of_full_forward() -> None:
    lm, cond = _model(10)
    with torch.no_grad():  # make the text matter, so that the two halves differ
        lm.null_token.normal_(std=1.0)
        lm.cond_proj.weight.normal_(std=1.0)
    memory = _cfg_memory(lm, lm.memory(cond.encode(["a dog barking", "rain on a tin roof"])))
    codes = torch.randint(0, lm.cfg.codebook_size, (2, lm.cfg.n_codebooks, 12))
    inp = shift_right(build_delay_pattern(codes, lm.special), lm.special).repeat(2, 1, 1)
    with torch.inference_mode():
        full = lm(inp, memory)
        expected = apply_cfg(full[:2], full[2:], 3.0)[:, :, 3:]
        guided = _step_logits(lm, memory, inp, 3.0)
        plain = _step_logits(lm, memory, inp, 1.0)
    assert guided.shape == expected.shape
    torch.testing.assert_close(guided, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(plain, guided, atol=1e-3)  # the guidance did act
    torch.testing.assert_close(plain, full[:2, :, 3:], rtol=1e-4, atol=1e-4)  # coef 1: the conditional half


@pytest.mark.parametrize("prompt_frames", [0, 5])
def test_kv_cache_generation_equals_no_cache(prompt_frames: int) -> None:
    lm, cond = _model(1)
    memory = lm.memory(cond.encode(["thunder far away", "a bell"]))
    prompt = torch.randint(0, lm.cfg.codebook_size, (2, lm.cfg.n_codebooks, prompt_frames)) if prompt_frames else None
    params = SamplingParams(temperature=1.0, top_k=20, top_p=0.9, cfg_coef=3.0)
    out = [
        generate_codes(lm, memory, 24, params, prompt=prompt, generator=torch.Generator().manual_seed(5), use_cache=c)
        for c in (True, False)
    ]
    assert out[0].shape == (2, lm.cfg.n_codebooks, prompt_frames + 24)
    assert torch.equal(out[0], out[1])
    if prompt is not None:
        assert torch.equal(out[0][..., :prompt_frames], prompt)


def test_cfg_one_equals_conditional_path() -> None:
    lm, cond = _model(2)
    with torch.no_grad():  # a random model barely listens to its text: make the condition matter
        lm.null_token.normal_(std=1.0)
        lm.cond_proj.weight.normal_(std=1.0)
        lm.heads.weight.normal_(std=1.0)
    memory = lm.memory(cond.encode(["glass breaking"]))
    params = SamplingParams(temperature=1.0, top_k=0, cfg_coef=1.0)
    plain = generate_codes(lm, memory, 16, params, generator=torch.Generator().manual_seed(3))
    batched = generate_codes(lm, memory, 16, params, generator=torch.Generator().manual_seed(3), force_cfg_batch=True)
    assert torch.equal(plain, batched)
    guided = generate_codes(
        lm,
        memory,
        16,
        SamplingParams(temperature=1.0, top_k=0, cfg_coef=5.0),
        generator=torch.Generator().manual_seed(3),
    )
    assert not torch.equal(plain, guided)  # guidance does change the result


def test_same_seed_same_codes_other_seed_differs() -> None:
    lm, cond = _model(3)
    memory = lm.memory(cond.encode(["wind"]))
    params = SamplingParams()
    a, b, c = (generate_codes(lm, memory, 20, params, generator=torch.Generator().manual_seed(s)) for s in (7, 7, 8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_long_generation_slides_the_window_and_reports_progress() -> None:
    lm, cond = _model(4, max_frames=16)
    memory = lm.memory(cond.encode(["engine hum"]))
    seen: list[tuple[int, int]] = []
    codes = generate_codes(
        lm,
        memory,
        50,
        SamplingParams(),
        generator=torch.Generator().manual_seed(0),
        progress=lambda s, n: seen.append((s, n)),
        stride=4,
    )
    assert codes.shape == (1, lm.cfg.n_codebooks, 50)
    chunks = plan_chunks(0, 50, 16, 4)
    assert sum(c.new for c in chunks) == 50 and all(c.context + c.new <= 16 for c in chunks)
    total = steps_of(chunks, lm.cfg.n_codebooks)
    assert seen == [(i, total) for i in range(1, total + 1)]


def test_cancellation_between_steps() -> None:
    lm, cond = _model(5)
    memory = lm.memory(cond.encode(["a cat"]))
    calls: list[int] = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(CancelledError):
        generate_codes(lm, memory, 30, SamplingParams(), should_cancel=cancel)
    assert len(calls) == 4


def test_tiny_model_overfits_one_batch() -> None:
    lm, cond = _model(6)
    lm.train()
    cond.train()
    codes = torch.randint(0, lm.cfg.codebook_size, (4, lm.cfg.n_codebooks, 24))
    codes[1, :, 18:] = -1  # padding is ignored
    prompts = ["dog bark", "cat meow", "rain on a roof", "door slam"]
    opt = torch.optim.AdamW([*lm.parameters(), *cond.parameters()], lr=3e-3)
    losses = []
    for _ in range(120):
        result = lm.compute_loss(codes, lm.memory(cond.encode(prompts)))
        opt.zero_grad()
        result.loss.backward()
        opt.step()
        losses.append(result.loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert float(result.accuracy.min()) > 0.8


def test_sampling_filters() -> None:
    logits = torch.tensor([[0.0, 5.0, 4.0, -3.0]])
    assert sample_tokens(logits, SamplingParams(temperature=0.0), None).item() == 1
    g = torch.Generator().manual_seed(0)
    draws = {int(sample_tokens(logits, SamplingParams(top_k=2), g)) for _ in range(200)}
    assert draws == {1, 2}
    draws = {int(sample_tokens(logits, SamplingParams(top_k=0, top_p=0.5), g)) for _ in range(100)}
    assert draws == {1}
    with pytest.raises(InvalidRequestError):
        SamplingParams(top_p=1.5).check()


def test_top_k_draws_follow_the_renormalised_distribution() -> None:
    logits = torch.tensor([[2.0, 0.0, 1.0, -1.0, 3.0, -2.0]]).expand(4000, -1)
    drawn = sample_tokens(logits, SamplingParams(temperature=1.0, top_k=3), torch.Generator().manual_seed(1))
    counts = torch.bincount(drawn, minlength=6).float() / drawn.numel()
    expected = torch.zeros(6)
    expected[[4, 0, 2]] = torch.softmax(torch.tensor([3.0, 2.0, 1.0]), dim=0)
    assert counts[[1, 3, 5]].sum() == 0  # never outside the top 3
    torch.testing.assert_close(counts, expected, atol=0.03, rtol=0.0)
    # top-k then top-p: the nucleus of 0.7 within the top 3 is {4, 0} (0.665 < 0.7 before token 0)
    drawn = sample_tokens(logits, SamplingParams(temperature=1.0, top_k=3, top_p=0.7), torch.Generator().manual_seed(2))
    assert set(drawn.unique().tolist()) == {0, 4}
    # the temperature applies before the top-k cut
    drawn = sample_tokens(logits, SamplingParams(temperature=2.0, top_k=5), torch.Generator().manual_seed(3))
    counts = torch.bincount(drawn, minlength=6).float() / drawn.numel()
    expected = torch.softmax(logits[0] / 2.0, dim=0).masked_fill(torch.arange(6) == 5, 0.0)
    torch.testing.assert_close(counts, expected / expected.sum(), atol=0.03, rtol=0.0)


def test_hashed_encoder_rejects_empty_and_overlong_prompts() -> None:
    cond = HashedConditioner(LMConfig.tiny().text)
    with pytest.raises(InvalidRequestError, match="empty"):
        cond.encode(["   "])
    with pytest.raises(InvalidRequestError, match="limit is 32"):
        cond.encode([" ".join(["word"] * 40)])
    out = cond.encode(["a dog", "a much longer prompt here"])
    assert out.embeddings.shape == (2, 5, cond.dim) and out.mask.sum(1).tolist() == [2, 5]


def test_kv_cache_equals_no_cache_across_sliding_windows() -> None:
    lm, cond = _model(7, max_frames=12)
    memory = lm.memory(cond.encode(["a long drone"]))
    out = [
        generate_codes(
            lm, memory, 30, SamplingParams(top_k=10), generator=torch.Generator().manual_seed(1), use_cache=c, stride=5
        )
        for c in (True, False)
    ]
    assert out[0].shape[-1] == 30 and torch.equal(out[0], out[1])


def test_decoding_threads_are_restored_even_after_cancellation() -> None:
    lm, cond = _model(9)
    memory = lm.memory(cond.encode(["a siren"]))
    before = torch.get_num_threads()
    seen: list[int] = []
    try:
        torch.set_num_threads(2)
        generate_codes(lm, memory, 6, SamplingParams(), progress=lambda s, n: seen.append(torch.get_num_threads()))
        assert seen and set(seen) == {1}  # decoding ran single-threaded (DECODE_THREADS)
        assert torch.get_num_threads() == 2
        with pytest.raises(CancelledError):
            generate_codes(lm, memory, 6, SamplingParams(), should_cancel=lambda: True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
