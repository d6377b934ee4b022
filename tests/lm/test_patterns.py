"""Delay pattern: build/revert round trips and where the special token goes."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from soundgen.lm.patterns import build_delay_pattern, pattern_length, revert_delay_pattern, shift_right, valid_mask


@settings(max_examples=60, deadline=None)
@given(
    b=st.integers(1, 3), k=st.integers(1, 9), t=st.integers(0, 40), card=st.integers(2, 2048), seed=st.integers(0, 99)
)
def test_build_revert_round_trip(b: int, k: int, t: int, card: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, card, (b, k, t), generator=g)
    seq = build_delay_pattern(codes, special=card)
    assert seq.shape == (b, k, pattern_length(t, k))
    assert torch.equal(revert_delay_pattern(seq), codes)
    # exactly the valid positions hold codes; the rest hold the special token
    valid = valid_mask(seq.shape[-1], k, t)
    assert bool((seq[:, ~valid] == card).all())
    assert bool((seq[:, valid] < card).all())


def test_codebook_k_lags_k_steps() -> None:
    codes = torch.arange(12).view(1, 3, 4)
    seq = build_delay_pattern(codes, special=99)
    assert seq[0].tolist() == [
        [0, 1, 2, 3, 99, 99],
        [99, 4, 5, 6, 7, 99],
        [99, 99, 8, 9, 10, 11],
    ]


def test_padding_becomes_special_and_shift_right() -> None:
    codes = torch.tensor([[[1, 2, -1], [3, 4, -1]]])
    seq = build_delay_pattern(codes, special=7)
    assert seq[0].tolist() == [[1, 2, 7, 7], [7, 3, 4, 7]]
    assert shift_right(seq, 7)[0].tolist() == [[7, 1, 2, 7], [7, 7, 3, 4]]
