"""Text to sound: the one entry point that the CLI and the service use to generate.

``TextToSound(codec, lm, conditioner)`` encodes prompts with the text encoder, samples codes with the LM
(classifier-free guidance, KV cache, sliding window beyond the training length) and decodes them with the codec.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

import numpy as np
import torch

from soundgen.audio.io import is_silent
from soundgen.errors import CorruptFileError, InvalidRequestError, ModelNotFoundError
from soundgen.lm.conditioners import TextConditioner, check_prompt
from soundgen.lm.generate import CancelFn, ProgressFn, generate_codes
from soundgen.lm.model import LMModel, Memory
from soundgen.lm.sampling_params import DEFAULTS, SEED, SamplingParams
from soundgen.model_files import default_model_dir
from soundgen.tokenizer import AudioTokenizer

log = logging.getLogger(__name__)

MAX_DURATION = 600.0
MAX_COUNT = 16
DType = Literal["float32", "bfloat16"]
DTYPES: tuple[DType, ...] = ("float32", "bfloat16")
"""The LM inference precisions :meth:`TextToSound.load` takes."""


def check_dtype(dtype: str) -> DType:
    """``dtype`` as one of :data:`DTYPES`.

    Raises:
        InvalidRequestError: another value; ``int8`` (removed) is told so, with the reason.
    """
    if dtype == "int8":
        raise InvalidRequestError(
            "dtype int8 is no longer offered: its decoding steps were 1.6x slower than float32's (and lossy); "
            "use float32, the default"
        )
    if dtype not in DTYPES:
        raise InvalidRequestError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return cast("DType", dtype)


@dataclass
class GenerationRequest:
    """What to generate.

    Attributes:
        prompt: text describing the sound.
        duration: seconds of audio per sound (0 < duration <= 600).
        count: sounds to generate for the prompt (1..16), in one batch.
        seed, cfg_coef, temperature, top_k, top_p, negative_prompt: the sampling settings, as
            :class:`SamplingParams` has them (defaults and limits there: :data:`~soundgen.lm.sampling_params.LIMITS`);
            a None seed draws one (reported in the result); a negative prompt is what guidance steers away from.
        audio_prompt: optional ``[C, T]`` audio to continue (every sound starts with it, as the codec hears it, and
            goes on for ``duration`` more seconds), at ``audio_prompt_rate`` (default: the codec's).
    """

    prompt: str
    duration: float = 5.0
    count: int = 1
    seed: int | None = DEFAULTS.seed
    cfg_coef: float = DEFAULTS.cfg_coef
    temperature: float = DEFAULTS.temperature
    top_k: int = DEFAULTS.top_k
    top_p: float = DEFAULTS.top_p
    negative_prompt: str | None = DEFAULTS.negative_prompt
    audio_prompt: np.ndarray | None = None
    audio_prompt_rate: int | None = None

    def sampling(self) -> SamplingParams:
        """The sampling settings of this request."""
        return SamplingParams(
            temperature=self.temperature, top_k=self.top_k, top_p=self.top_p, cfg_coef=self.cfg_coef, seed=self.seed,
            negative_prompt=self.negative_prompt,
        )

    def check(self) -> None:
        """Raise :class:`InvalidRequestError` naming the first invalid field."""
        check_prompt(self.prompt)
        _check_duration(self.duration)
        if not isinstance(self.count, int) or not 1 <= self.count <= MAX_COUNT:
            raise InvalidRequestError(f"count must be between 1 and {MAX_COUNT}, got {self.count}")
        self.sampling().check()
        negative_text(self.negative_prompt)


@dataclass
class GenerationResult:
    """Generated sounds.

    Attributes:
        audio: one float32 ``[C, T]`` array per sound.
        sample_rate: samples per second.
        seed: the seed used (give it back to reproduce the sounds).
        duration: seconds of audio per sound.
        elapsed: seconds of wall time the generation took.
        prompts: the prompt of each sound.
        regenerated: how many of the sounds came back silent and were drawn again (see ``silent_retries`` of
            :meth:`TextToSound.generate_batch`); the count of redraws, so one sound can count more than once.
    """

    audio: list[np.ndarray]
    sample_rate: int
    seed: int
    duration: float
    elapsed: float
    prompts: list[str] = field(default_factory=list)
    regenerated: int = 0


SILENT_RETRIES = 2
"""How many times :meth:`TextToSound.generate_batch` draws a silent sound again by default."""


def retry_seed(seed: int) -> int:
    """The seed of the redraw of a silent sound generated with ``seed`` (deterministic, within :data:`SEED`)."""
    return (seed * 1_000_003 + 7_919) % (int(SEED.maximum) + 1)


def _check_duration(duration: float) -> None:
    if not isinstance(duration, int | float) or not math.isfinite(duration) or not 0 < duration <= MAX_DURATION:
        raise InvalidRequestError(f"duration must be between 0 and {MAX_DURATION:g} seconds, got {duration}")


def negative_text(text: str | None) -> str | None:
    """A negative prompt stripped, or None when there is none (None or blank).

    Raises:
        InvalidRequestError: the text is longer than a prompt may be (the message names the negative prompt).
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    with _negative_errors():
        return check_prompt(text)


@contextlib.contextmanager
def _negative_errors() -> Iterator[None]:
    """Word the prompt checks' errors for the negative prompt: "the negative prompt is 40 tokens long; ..."."""
    try:
        yield
    except InvalidRequestError as e:
        raise InvalidRequestError(str(e).replace("the prompt", "the negative prompt", 1)) from None


def limit_peak(audio: np.ndarray, ceiling: float = 0.98) -> np.ndarray:
    """``audio`` scaled down as a whole when its peak exceeds ``ceiling`` (a decoder can overshoot full scale; a
    16-bit file would clip it), non-finite samples set to 0. Quieter audio is returned unchanged."""
    audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return audio * np.float32(ceiling / peak) if peak > ceiling else audio


class TextToSound:
    """Codec + LM + text encoder.

    Args:
        codec: the audio tokenizer the LM's codes belong to.
        lm: the token language model.
        conditioner: the text encoder the LM was trained with.
    """

    def __init__(self, codec: AudioTokenizer, lm: LMModel, conditioner: TextConditioner) -> None:
        cfg = lm.cfg
        if codec.n_codebooks != cfg.n_codebooks:
            if cfg.n_codebooks > codec.max_codebooks:
                raise CorruptFileError(
                    f"the LM models {cfg.n_codebooks} codebooks but the codec has {codec.max_codebooks}: "
                    "the model's codec/ and lm/ do not belong together; export them again"
                )
            codec.set_n_codebooks(cfg.n_codebooks)
        if codec.codebook_size != cfg.codebook_size:
            raise CorruptFileError(
                f"the LM's codebook size {cfg.codebook_size} differs from the codec's {codec.codebook_size}: "
                "the model's codec/ and lm/ do not belong together; export them again"
            )
        self.codec = codec
        self.lm = lm.eval()
        self.conditioner = conditioner.eval()

    @property
    def sample_rate(self) -> int:
        return int(self.codec.sample_rate)

    @property
    def channels(self) -> int:
        return int(self.codec.channels)

    @classmethod
    def load(cls, model_dir: str | Path | None = None, *, device: str = "cpu", dtype: DType = "float32") -> TextToSound:
        """Load a model directory (``codec/`` + ``lm/``); None loads the bundled default model.

        Args:
            model_dir: the directory, or None for :func:`~soundgen.model_files.default_model_dir`.
            device: torch device.
            dtype: LM weights' dtype for inference (:data:`DTYPES`): ``float32`` (exact; a model stored in float16,
                as exported ones are, decodes with float16-packed copies of its matrices, which hold the same
                values: :mod:`soundgen.lm.step_weights`); ``bfloat16`` halves memory traffic. (``int8`` was
                removed: slower than ``float32``, see :mod:`soundgen.lm.fused_step`.)

        Raises:
            ModelNotFoundError: nothing there; CorruptFileError: unreadable files; InvalidRequestError: another
            dtype.
        """
        dtype = check_dtype(dtype)
        from soundgen.codec.io import load_codec
        from soundgen.lm.io import load_lm

        root = Path(model_dir) if model_dir is not None else default_model_dir()
        if not root.is_dir():
            raise ModelNotFoundError(f"no model directory at {root}")
        codec = load_codec(root / "codec").to(device).eval()
        loaded = load_lm(root / "lm", device=device)
        lm = loaded.lm.to(torch.bfloat16) if dtype == "bfloat16" else loaded.lm
        return cls(codec, lm, loaded.conditioner)

    @classmethod
    def tiny_random(cls, seed: int = 0) -> TextToSound:
        """A tiny randomly initialised codec + LM + hashed text encoder (for tests; it makes noise)."""
        from soundgen.codec.config import CodecConfig
        from soundgen.codec.model import build_codec
        from soundgen.lm.conditioners import HashedConditioner
        from soundgen.lm.config import LMConfig

        torch.manual_seed(seed)
        # The tiny codec with a hop of 160 samples: 50 frames/s at 8 kHz, the frame rate of the default model.
        codec = build_codec(dataclasses.replace(CodecConfig.tiny(), strides=[4, 5, 8])).eval()
        base = LMConfig.tiny()
        cfg = LMConfig(
            n_codebooks=codec.n_codebooks,
            codebook_size=codec.codebook_size,
            d_model=base.d_model,
            n_layers=base.n_layers,
            n_heads=base.n_heads,
            ff_mult=base.ff_mult,
            max_frames=256,
            frame_rate=float(codec.frame_rate),
            text=base.text,
        )
        conditioner = HashedConditioner(cfg.text)
        return cls(codec, LMModel(cfg, conditioner.dim), conditioner)

    def generate(
        self, request: GenerationRequest, progress: ProgressFn | None = None, should_cancel: CancelFn | None = None
    ) -> GenerationResult:
        """Generate ``request.count`` sounds for one prompt.

        Args:
            request: prompt, duration and sampling settings.
            progress: called as ``progress(step, total_steps)`` after every decoding step.
            should_cancel: checked between steps; returning True raises :class:`CancelledError`.

        Raises:
            InvalidRequestError: an invalid request (empty or overlong prompt, bad duration, ...).
            CancelledError: ``should_cancel`` returned True.
        """
        request.check()
        return self.generate_batch(
            [request.prompt] * request.count,
            request.duration,
            request.sampling(),
            seed=request.seed,
            audio_prompt=request.audio_prompt,
            audio_prompt_rate=request.audio_prompt_rate,
            progress=progress,
            should_cancel=should_cancel,
        )

    def generate_batch(
        self,
        prompts: list[str],
        duration: float,
        params: SamplingParams | None = None,
        *,
        seed: int | None = None,
        audio_prompt: np.ndarray | None = None,
        audio_prompt_rate: int | None = None,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        use_cache: bool = True,
        silent_retries: int = SILENT_RETRIES,
    ) -> GenerationResult:
        """Generate one sound per prompt, all in one batch.

        Args:
            prompts: B prompts.
            duration: seconds of new audio per sound.
            params: sampling settings (defaults: :class:`SamplingParams`); its negative prompt, when given, is
                encoded once and guides every sound.
            seed: random seed; None takes ``params.seed``, and when that is None too draws one.
            audio_prompt: optional ``[C, T]`` (or ``[T]``) audio to continue: every sound starts with it (as the
                codec reconstructs it) and goes on for ``duration`` more seconds.
            audio_prompt_rate: sample rate of ``audio_prompt`` (default: the codec's).
            progress: ``progress(step, total_steps)`` after every decoding step.
            should_cancel: checked between steps; True raises :class:`CancelledError`.
            use_cache: use the KV cache (False: recompute every step; same output, slower).
            silent_retries: a sound that comes back silent (peak below -50 dBFS: the LM wrote the codec's
                silence code throughout, which a short sound such as a click still does now and then) is drawn
                again, with a seed derived from ``seed``, up to this many times (0: never). The redraws are part
                of the result, so the same seed still gives the same sounds; ``progress`` starts again for each.

        Returns:
            :class:`GenerationResult` with B arrays ``[C, T]``.
        """
        params = params or SamplingParams()
        if seed is not None:
            params = dataclasses.replace(params, seed=seed)
        params.check()
        _check_duration(duration)
        if not prompts or len(prompts) > 64:
            raise InvalidRequestError(f"give between 1 and 64 prompts, got {len(prompts)}")
        prompts = [check_prompt(p) for p in prompts]
        negative = negative_text(params.negative_prompt)
        seed = secrets.randbelow(int(SEED.maximum) + 1) if params.seed is None else params.seed
        started = time.perf_counter()
        with torch.inference_mode():
            cond = self.conditioner.encode(prompts)
            memory = self.lm.memory(cond)
            negative_memory = None if negative is None else self._negative_memory(negative, len(prompts))
            prompt_codes = self._encode_prompt(audio_prompt, audio_prompt_rate, len(prompts))
            generator = torch.Generator(device=self.lm.device).manual_seed(seed)
            n_frames = max(1, math.ceil(duration * self.lm.cfg.frame_rate))
            codes = generate_codes(
                self.lm,
                memory,
                n_frames,
                params,
                prompt=prompt_codes,
                generator=generator,
                progress=progress,
                should_cancel=should_cancel,
                use_cache=use_cache,
                negative=negative_memory,
            )
            wav = self.codec.decode(codes.to(self.codec.device)).float().cpu().numpy()  # [B, C, T']
        prompt_seconds = 0.0 if prompt_codes is None else prompt_codes.shape[-1] / self.lm.cfg.frame_rate
        total = prompt_seconds + duration
        n_samples = min(wav.shape[-1], int(round(total * self.sample_rate)))
        audio = [limit_peak(np.ascontiguousarray(w[:, :n_samples], dtype=np.float32)) for w in wav]
        elapsed = time.perf_counter() - started
        log.debug("generated %d x %.2f s in %.2f s", len(audio), total, elapsed)
        silent = [i for i, a in enumerate(audio) if is_silent(a)] if silent_retries > 0 else []
        regenerated = 0
        if silent:
            log.info("%d of %d sounds came back silent; drawing them again", len(silent), len(audio))
            again = self.generate_batch(
                [prompts[i] for i in silent],
                duration,
                params,
                seed=retry_seed(seed),
                audio_prompt=audio_prompt,
                audio_prompt_rate=audio_prompt_rate,
                progress=progress,
                should_cancel=should_cancel,
                use_cache=use_cache,
                silent_retries=silent_retries - 1,
            )
            for i, redrawn in zip(silent, again.audio, strict=True):
                audio[i] = redrawn
            regenerated = len(silent) + again.regenerated
            elapsed += again.elapsed
        return GenerationResult(
            audio, self.sample_rate, seed, n_samples / self.sample_rate, elapsed, prompts, regenerated
        )

    def _negative_memory(self, text: str, batch: int) -> Memory:
        """The cross-attention memory of a negative prompt, the same for each of ``batch`` sounds: ``[B, M, D]``."""
        with _negative_errors():  # over the text encoder's token limit
            cond = self.conditioner.encode([text])
        one = self.lm.memory(cond)
        return Memory(one.tokens.expand(batch, -1, -1), one.mask.expand(batch, -1))

    def _encode_prompt(self, audio: np.ndarray | None, rate: int | None, batch: int) -> torch.Tensor | None:
        """Audio ``[C, T]`` -> codes ``[B, K, P]`` (the same prompt for every sound), or None."""
        if audio is None:
            return None
        from soundgen.audio.io import resample, to_channels

        x = np.asarray(audio, dtype=np.float32)
        x = x[None, :] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[-1] == 0 or not np.isfinite(x).all():
            raise InvalidRequestError("the audio prompt must be a non-empty finite [C, T] array")
        x = to_channels(x, self.channels)
        if rate is not None and rate != self.sample_rate:
            x = resample(x, rate, self.sample_rate)
        wav = torch.from_numpy(np.ascontiguousarray(x))[None].to(self.codec.device)
        codes = self.codec.encode(wav).to(self.lm.device)  # [1, K, P]
        if codes.shape[-1] == 0:
            raise InvalidRequestError("the audio prompt is shorter than one code frame; give a longer one")
        return codes.expand(batch, -1, -1)
