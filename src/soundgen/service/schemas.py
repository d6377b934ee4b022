"""Pydantic shapes of the HTTP API: what clients send and what they get back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from soundgen.service.models import JobState

AudioFormat = Literal["wav", "flac", "opus", "ogg", "mp3"]
AUDIO_FORMATS: tuple[str, ...] = ("wav", "flac", "opus", "ogg", "mp3")
MEDIA_TYPES: dict[str, str] = {
    "wav": "audio/wav", "flac": "audio/flac", "opus": "audio/ogg", "ogg": "audio/ogg", "mp3": "audio/mpeg",
}


class GenerationCreate(BaseModel):
    """A request to generate ``count`` sounds of ``duration`` seconds from ``prompt``."""

    model_config = ConfigDict(allow_inf_nan=False)  # NaN and Infinity are refused as numbers, with a 422

    prompt: str = Field(min_length=1, description="what the sound should be, in plain words")
    duration: float = Field(default=5.0, gt=0, description="seconds of audio per sound")
    count: int = Field(default=1, ge=1, description="how many variations to generate")
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1, description="random seed; empty picks one")
    cfg_coef: float = Field(default=3.0, ge=0, le=20, description="classifier-free guidance strength")
    temperature: float = Field(default=1.0, ge=0, le=5, description="sampling temperature (0: greedy)")
    top_k: int = Field(default=250, ge=0, le=100_000, description="sample from the k likeliest tokens (0: all)")
    top_p: float = Field(default=0.0, ge=0, le=1, description="nucleus sampling mass (0: off)")


class ResultOut(BaseModel):
    """One generated sound of a job, with where to fetch it."""

    index: int
    audio_url: str
    image_url: str
    downloads: dict[str, str]


class JobOut(BaseModel):
    """A generation job as the API shows it."""

    id: str
    state: JobState
    prompt: str
    duration: float
    count: int
    seed: int
    cfg_coef: float
    temperature: float
    top_k: int
    top_p: float
    progress: float = Field(description="0..100")
    step: int
    total_steps: int
    error: str | None
    attempts: int
    sample_rate: int | None
    elapsed: float | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    queue_position: int | None = Field(default=None, description="queued: 1 when it starts next (GET answers only)")
    eta_seconds: float | None = Field(default=None, description="queued or running: about how many seconds until it "
                                      "is done, from this server's measured speed (GET answers and running events)")
    results: list[ResultOut]
    archive_url: str | None = Field(default=None, description="succeeded: every sound in one zip (add ?fmt=mp3...)")


class JobPage(BaseModel):
    """One page of a job listing; pass ``next_cursor`` as ``cursor`` to get the next page."""

    items: list[JobOut]
    next_cursor: str | None


class ServiceInfo(BaseModel):
    """What the page needs to know before it draws itself."""

    version: str
    auth_required: bool
    model: str
    untrained_model: bool
    warning: str | None
    max_prompt_chars: int
    max_prompt_tokens: int | None = Field(description="the model's text encoder limit (None: not counted)")
    max_duration: float
    max_count: int
    formats: list[str]
    example_prompts: list[str]


class PromptCount(BaseModel):
    """A prompt to measure against this server's limits (the page's live counter)."""

    prompt: str = Field(max_length=20_000)


class PromptCountOut(BaseModel):
    """How long a prompt is, in characters and in the model's text-encoder tokens, and the limits."""

    chars: int
    max_chars: int
    tokens: int | None = Field(description="None when this server does not count tokens")
    max_tokens: int | None


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer: a sentence a person can act on."""

    error: str
