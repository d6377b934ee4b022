"""The sampling settings of a generation and their one set of limits.

Torch-free on purpose: the service's API process validates requests with these limits and never loads torch.
The sampling itself (temperature, top-k, top-p, guidance on logits) is :mod:`soundgen.lm.sampling`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from soundgen.errors import InvalidRequestError


@dataclass(frozen=True)
class Limit:
    """The allowed range of one sampling setting, both ends included.

    Attributes:
        minimum: the smallest value.
        maximum: the largest value.
        integer: whether the value must be an integer.
        off: what the setting's special value means, for help texts (e.g. ``"0 = greedy"``), or ``""``.
    """

    minimum: float
    maximum: float
    integer: bool = False
    off: str = ""

    def text(self) -> str:
        """The range as help texts show it: ``"0-20"``."""
        return f"{_number(self.minimum)}-{_number(self.maximum)}"

    def problem(self, name: str, value: object) -> str | None:
        """Why ``value`` is not allowed for the setting ``name`` (None: it is)."""
        between = f"between {_number(self.minimum)} and {_number(self.maximum)}"
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (self.integer and not isinstance(value, int)):
            return f"{name} must be {'an integer' if self.integer else 'a number'} {between}, got {value!r}"
        assert isinstance(value, int | float)
        if not (math.isfinite(value) and self.minimum <= value <= self.maximum):
            return f"{name} must be {between}, got {value!r}"
        return None


def _number(x: float) -> str:
    """``20`` for 20.0, ``2147483647`` for 2**31 - 1, ``0.5`` for 0.5: every digit, no exponent."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# The one set of limits of the sampling settings. The pipeline checks them (SamplingParams.check), and the CLI's
# help, the service's request schema (and so the web page's ranges) and the evaluation read them from here.
TEMPERATURE = Limit(0, 5, off="0 = greedy")
TOP_K = Limit(0, 100_000, integer=True, off="0 = all tokens")
TOP_P = Limit(0, 1, off="0 = off")
CFG_COEF = Limit(0, 20, off="1 = no guidance")
# A seed fits a signed 32-bit integer: the service stores it in an INTEGER column (32 bits on PostgreSQL), and the
# seeds drawn when none is given are below 2**31.
SEED = Limit(0, 2**31 - 1, integer=True)
LIMITS: dict[str, Limit] = {
    "temperature": TEMPERATURE,
    "top_k": TOP_K,
    "top_p": TOP_P,
    "cfg_coef": CFG_COEF,
    "seed": SEED,
}


@dataclass
class SamplingParams:
    """How tokens are drawn: the sampling settings of a generation, with the limits of :data:`LIMITS`.

    Attributes:
        temperature: softmax temperature; 0 picks the most likely token (greedy).
        top_k: keep only the k most likely tokens (0: no limit).
        top_p: keep the smallest set of tokens whose probability reaches p (0: no nucleus filtering).
        cfg_coef: classifier-free guidance: ``uncond + cfg_coef * (cond - uncond)``; 1 is the plain conditional.
        seed: random seed of the draws; None lets the caller draw one.
        negative_prompt: text to steer away from: classifier-free guidance's unconditional branch is conditioned
            on it instead of on nothing (``cond_neg + cfg_coef * (cond - cond_neg)``; no effect at ``cfg_coef``
            1). None (or blank) guides against the empty condition. It counts against the same length limits as
            the prompt (checked where the text encoder is, :meth:`soundgen.pipeline.TextToSound.generate_batch`).
    """

    # temperature 0.8 and top-k 50 (not MusicGen's 1.0 and 250): on the bundled model's plain prompts they gave
    # sounds nearer the real clips (Frechet distance 152 -> 95), more often pitched where music was asked for (0.69
    # -> 0.87) and as often or more often heard as what was asked, on three sets of prompts and seeds
    # (docs/lm_recipe.md, "Session 11: sampling")
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 0.0
    cfg_coef: float = 3.0
    seed: int | None = None
    negative_prompt: str | None = None

    def problems(self) -> list[str]:
        """Every setting out of its range, one sentence each (empty: all are fine)."""
        found = [LIMITS[name].problem(name, getattr(self, name)) for name in LIMITS if name != "seed"]
        if self.seed is not None:
            found.append(SEED.problem("seed", self.seed))
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            found.append(f"negative_prompt must be text, got {type(self.negative_prompt).__name__}")
        return [p for p in found if p is not None]

    def check(self) -> None:
        """Raise :class:`InvalidRequestError` naming the first setting out of its range."""
        problems = self.problems()
        if problems:
            raise InvalidRequestError(problems[0])


DEFAULTS = SamplingParams()
"""The default of every sampling setting (what the CLI, the API and the evaluation use when a setting is not
given)."""
