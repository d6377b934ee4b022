"""The sampling options that ``soundgen generate`` and ``soundgen eval generation`` share."""

from __future__ import annotations

import argparse


def add_sampling_options(p: argparse.ArgumentParser, seed_help: str, seed: int | None = None) -> None:
    """Add ``--seed --cfg --top-k --top-p --temperature --negative-prompt``, their defaults and ranges those of
    :mod:`soundgen.lm.sampling_params`, which checks them.

    Args:
        p: the command's parser.
        seed_help: help of ``--seed``; ``{range}`` is replaced by the seed's range.
        seed: the default seed (``None``: a random one, printed).
    """
    from soundgen.lm.sampling_params import CFG_COEF, DEFAULTS, SEED, TEMPERATURE, TOP_K, TOP_P, Limit

    def text(what: str, limit: Limit, default: float) -> str:
        return f"{what}, {limit.text()} (default {default:g}" + (f"; {limit.off})" if limit.off else ")")

    p.add_argument("--seed", type=int, default=seed, help=seed_help.format(range=SEED.text()))
    p.add_argument("--cfg", type=float, default=DEFAULTS.cfg_coef,
                   help=text("classifier-free guidance strength", CFG_COEF, DEFAULTS.cfg_coef))
    p.add_argument("--top-k", type=int, default=DEFAULTS.top_k,
                   help=text("sample among the k likeliest tokens", TOP_K, DEFAULTS.top_k))
    p.add_argument("--top-p", type=float, default=DEFAULTS.top_p,
                   help=text("nucleus sampling threshold", TOP_P, DEFAULTS.top_p))
    p.add_argument("--temperature", type=float, default=DEFAULTS.temperature,
                   help=text("sampling temperature", TEMPERATURE, DEFAULTS.temperature))
    p.add_argument("--negative-prompt", metavar="TEXT",
                   help="what the sound should not be, e.g. 'music, voices': guidance steers away from it instead of "
                   "from no text (no effect with --cfg 1); as long as a prompt may be")
