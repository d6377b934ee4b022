"""The restructured training loss (one codebook at a time, ignored positions, lazy accuracy) computes what the
plain formula over the full logits does, values and gradients; the training's optimizer matches plain AdamW."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from soundgen.lm.conditioners import HashedConditioner
from soundgen.lm.config import LMConfig, LMTrainParams
from soundgen.lm.model import LMModel
from soundgen.lm.patterns import build_delay_pattern, shift_right
from soundgen.train.lm import build_optimizer, clip_gradients, load_optimizer_state


def _reference_loss(lm: LMModel, codes: torch.Tensor, memory: object) -> tuple[torch.Tensor, ...]:
    """The loss as first written: cross-entropy of every position of ``lm(...)``'s ``[B, K, S, card]`` logits,
    weighted by the valid positions; and its per-codebook cross-entropy and accuracy."""
    target = build_delay_pattern(codes, lm.special)
    logits = lm(shift_right(target, lm.special), memory)  # type: ignore[arg-type]
    card = lm.cfg.codebook_size
    ce_all = F.cross_entropy(
        logits.reshape(-1, card), target.clamp(max=card - 1).reshape(-1), reduction="none"
    ).view_as(target)
    weight = (target != lm.special).float()
    per_k = weight.sum(dim=(0, 2)).clamp(min=1.0)
    ce = (ce_all * weight).sum(dim=(0, 2)) / per_k
    accuracy = ((logits.argmax(-1) == target).float() * weight).sum(dim=(0, 2)) / per_k
    loss = (ce_all * weight).sum() / weight.sum().clamp(min=1.0)
    return loss, ce, accuracy


def _setup(seed: int) -> tuple[LMModel, HashedConditioner, torch.Tensor, list[str]]:
    torch.manual_seed(seed)
    cfg = LMConfig.tiny()
    cfg.n_codebooks = 3
    cfg.codebook_size = 5  # near-chance predictions still get some right
    cond = HashedConditioner(cfg.text)
    lm = LMModel(cfg, cond.dim)
    with torch.no_grad():  # sharper logits than the initialisation's, so that the argmax is not near-random
        lm.heads.weight.normal_(std=0.5)
    codes = torch.randint(0, cfg.codebook_size, (3, cfg.n_codebooks, 17))
    codes[1, :, 11:] = -1  # padding
    codes[2, 1, 5:9] = -1
    return lm, cond, codes, ["a dog barking", "rain", "a door slams shut twice"]


def test_loss_ce_accuracy_and_gradients_match_the_full_logits_formula() -> None:
    lm, cond, codes, prompts = _setup(0)
    lm.eval()  # no dropout: both passes see the same function
    drop = torch.tensor([False, True, False])

    memory = lm.memory(cond.encode(prompts), drop)
    result = lm.compute_loss(codes, memory)
    result.loss.backward()
    grads = {n: p.grad.clone() for n, p in lm.named_parameters() if p.grad is not None}
    lm.zero_grad()

    loss, ce, accuracy = _reference_loss(lm, codes, lm.memory(cond.encode(prompts), drop))
    loss.backward()
    torch.testing.assert_close(result.loss, loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(result.ce, ce.detach(), rtol=1e-6, atol=1e-6)
    assert 0.0 < float(accuracy.min()) and float(accuracy.max()) < 1.0  # a real check, not all-or-nothing
    torch.testing.assert_close(result.accuracy, accuracy)
    assert grads.keys() == {n for n, p in lm.named_parameters() if p.grad is not None}
    for name, p in lm.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(grads[name], p.grad, rtol=1e-5, atol=1e-7, msg=name)
    assert not result.ce.requires_grad and not result.accuracy.requires_grad


def test_fully_padded_codebook_counts_nothing() -> None:
    lm, cond, codes, prompts = _setup(1)
    codes[:, 2] = -1  # the last codebook holds no code at all
    result = lm.compute_loss(codes, lm.memory(cond.encode(prompts)))
    loss, ce, accuracy = _reference_loss(lm, codes, lm.memory(cond.encode(prompts)))
    assert float(result.ce[2]) == 0.0 and float(result.accuracy[2]) == 0.0
    torch.testing.assert_close(result.loss, loss)
    torch.testing.assert_close(result.ce, ce.detach())
    torch.testing.assert_close(result.accuracy, accuracy)


def test_training_optimizer_and_clipping_match_plain_adamw() -> None:
    torch.manual_seed(2)
    params = [torch.nn.Parameter(torch.randn(shape)) for shape in [(37, 16), (16,), (5, 3, 4)]]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    start = [p.detach().clone() for p in params]
    p = LMTrainParams(lr=1e-2, weight_decay=0.1)
    fused = build_optimizer(params, p, torch.device("cpu"))
    plain = torch.optim.AdamW(
        [{"params": [twins[0], twins[2]], "weight_decay": 0.1}, {"params": [twins[1]], "weight_decay": 0.0}],
        lr=1e-2,
        betas=(0.9, 0.95),
        foreach=False,
    )
    for _ in range(3):
        for a, b in zip(params, twins, strict=True):
            a.grad = torch.randn(a.shape) * 3
            b.grad = a.grad.clone()
        clip_gradients(fused, 1.0)
        torch.nn.utils.clip_grad_norm_(twins, 1.0, foreach=False)
        fused.step()
        plain.step()
    for a, b in zip(params, twins, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(float((a.detach() - s).abs().max()) > 1e-3 for a, s in zip(params, start, strict=True))  # they did move
    assert fused.defaults["fused"]


def test_resuming_an_unfused_checkpoint_keeps_the_fused_kernel() -> None:
    torch.manual_seed(3)
    weights = [torch.nn.Parameter(torch.randn(6, 4)), torch.nn.Parameter(torch.randn(4))]
    old = torch.optim.AdamW([{"params": [weights[0]]}, {"params": [weights[1]]}], lr=1e-2, foreach=False)
    for w in weights:
        w.grad = torch.randn(w.shape)
    old.step()
    resumed = build_optimizer(weights, LMTrainParams(), torch.device("cpu"))
    load_optimizer_state(resumed, old.state_dict())
    assert all(group["fused"] and group["lr"] == 1e-2 for group in resumed.param_groups)
    torch.testing.assert_close(resumed.state[weights[0]]["exp_avg"], old.state[weights[0]]["exp_avg"])
    resumed.step()  # the fused kernel takes the loaded state
