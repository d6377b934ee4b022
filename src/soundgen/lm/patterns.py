"""The delay pattern: K codebook streams interleaved so that codebook ``k`` lags ``k`` steps behind.

Frame ``t`` of codebook ``k`` sits at step ``t + k`` of the pattern sequence, so a clip of ``T`` frames takes
``T + K - 1`` steps and, at every step, codebook ``k`` is predicted knowing codebooks ``< k`` of the same frame.
Positions that hold no code (the leading corner of the later codebooks, the trailing corner of the earlier
ones, and padding) hold the special token ``codebook_size`` and are masked out of the loss.
"""

from __future__ import annotations

import torch


def pattern_length(n_frames: int, n_codebooks: int) -> int:
    """Steps of the delay pattern for ``n_frames`` frames of ``n_codebooks`` codebooks."""
    return n_frames + n_codebooks - 1


def build_delay_pattern(codes: torch.Tensor, special: int) -> torch.Tensor:
    """Lay codes out in the delay pattern.

    Args:
        codes: ``[B, K, T]`` int codes; negative values mark padding (no code).
        special: the special (empty) token id, i.e. ``codebook_size``.

    Returns:
        ``[B, K, T + K - 1]`` int64 sequence where ``seq[:, k, t + k] = codes[:, k, t]`` and every other
        position (and every padded code) is ``special``.
    """
    b, k, t = codes.shape
    seq = torch.full((b, k, pattern_length(t, k)), special, dtype=torch.long, device=codes.device)
    for q in range(k):
        seq[:, q, q : q + t] = codes[:, q].long()
    return seq.masked_fill(seq < 0, special)


def revert_delay_pattern(seq: torch.Tensor, n_frames: int | None = None) -> torch.Tensor:
    """Undo :func:`build_delay_pattern`.

    Args:
        seq: ``[B, K, S]`` pattern sequence.
        n_frames: frames to recover; defaults to ``S - K + 1`` (every complete frame).

    Returns:
        ``[B, K, T]`` codes with ``codes[:, k, t] = seq[:, k, t + k]``.
    """
    b, k, s = seq.shape
    t = s - k + 1 if n_frames is None else n_frames
    if t < 0 or t + k - 1 > s:
        raise ValueError(f"a pattern of {s} steps and {k} codebooks cannot hold {t} frames")
    return torch.stack([seq[:, q, q : q + t] for q in range(k)], dim=1)


def valid_mask(n_steps: int, n_codebooks: int, n_frames: int, device: torch.device | None = None) -> torch.Tensor:
    """Which pattern positions hold a code of a clip of ``n_frames`` frames.

    Returns:
        ``[K, S]`` bool, True where ``0 <= s - k < n_frames``.
    """
    s = torch.arange(n_steps, device=device)[None, :]
    k = torch.arange(n_codebooks, device=device)[:, None]
    frame = s - k
    return (frame >= 0) & (frame < n_frames)


def shift_right(seq: torch.Tensor, start: int) -> torch.Tensor:
    """The LM's input for a pattern ``[B, K, S]``: ``start`` at step 0, then ``seq[..., :-1]``."""
    first = torch.full_like(seq[..., :1], start)
    return torch.cat([first, seq[..., :-1]], dim=-1)
