"""Pydantic shapes of the HTTP API: what clients send and what they get back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from soundgen.lm.sampling_params import CFG_COEF, DEFAULTS, SEED, TEMPERATURE, TOP_K, TOP_P
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
    # The sampling settings: defaults and limits are soundgen.lm.sampling_params's, shared with the CLI and pipeline.
    seed: int | None = Field(default=DEFAULTS.seed, ge=SEED.minimum, le=SEED.maximum,
                             description="random seed; empty picks one")
    cfg_coef: float = Field(default=DEFAULTS.cfg_coef, ge=CFG_COEF.minimum, le=CFG_COEF.maximum,
                            description="classifier-free guidance strength")
    temperature: float = Field(default=DEFAULTS.temperature, ge=TEMPERATURE.minimum, le=TEMPERATURE.maximum,
                               description="sampling temperature (0: greedy)")
    top_k: int = Field(default=DEFAULTS.top_k, ge=TOP_K.minimum, le=TOP_K.maximum,
                       description="sample from the k likeliest tokens (0: all)")
    top_p: float = Field(default=DEFAULTS.top_p, ge=TOP_P.minimum, le=TOP_P.maximum,
                         description="nucleus sampling mass (0: off)")
    negative_prompt: str | None = Field(
        default=DEFAULTS.negative_prompt, description="what the sound should not be: guidance steers away from it "
        "(empty: from no text); counted against the prompt's length limits")
    continue_from: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}/[0-9]+$",
                                      description="continue (extend) a result of yours: '<job id>/<index>'; the "
                                      "sounds start with it and go on for duration seconds")
    audio_prompt: str | None = Field(default=None, description="continue an audio file of yours (WAV, FLAC, OGG, "
                                     "MP3...), base64; at most max_continue_seconds long (GET /api/v1/info)")


class GenerationBatch(BaseModel):
    """Several prompts in one request: one generation per prompt, queued in this order; none when one is refused.

    Every other field is a field of :class:`GenerationCreate` (``duration``, ``count``, ``seed``...), shared by the
    prompts; each prompt is checked as a single one is, and a refusal names its line (1 is the first prompt).
    """

    model_config = ConfigDict(extra="allow")

    prompts: list[str] = Field(min_length=1, description="one prompt per generation (the page's lines)")


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
    negative_prompt: str | None = None
    continues: str | None = Field(default=None, description="what the sounds start with: 'upload', or "
                                  "'<job id>/<index>' of the result they extend; None: nothing")
    prompt_seconds: float | None = Field(default=None, description="seconds of audio continued (the sounds are that "
                                         "much longer than duration)")
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


class JobBatchOut(BaseModel):
    """The jobs a batch queued, in the order of its prompts."""

    items: list[JobOut]


class JobPage(BaseModel):
    """One page of a job listing; pass ``next_cursor`` as ``cursor`` to get the next page."""

    items: list[JobOut]
    next_cursor: str | None


class SettingInfo(BaseModel):
    """One setting of a generation request: its default and its bounds (None: unbounded or not a number)."""

    default: float | int | None
    minimum: float | None
    maximum: float | None


def setting_infos() -> dict[str, SettingInfo]:
    """Default and bounds of every number field of :class:`GenerationCreate` (not the prompts), read from its JSON
    schema (so the page shows the defaults the API applies, never a copy of them)."""
    out = {}
    for name, prop in GenerationCreate.model_json_schema()["properties"].items():
        if name not in ("prompt", "negative_prompt", "continue_from", "audio_prompt"):
            default = prop.get("default")
            out[name] = SettingInfo(default=default if isinstance(default, int | float) else None,
                                    minimum=_bound(prop, "minimum", "exclusiveMinimum"),
                                    maximum=_bound(prop, "maximum", "exclusiveMaximum"))
    return out


def _bound(prop: dict[str, Any], *keys: str) -> float | None:
    """The first of ``keys`` in a JSON-schema property or its ``anyOf`` parts (``int | None`` fields)."""
    for part in (prop, *prop.get("anyOf", [])):
        for key in keys:
            if key in part:
                return float(part[key])
    return None


class OidcInfo(BaseModel):
    """What the page needs to sign in at the server's OpenID Connect issuer (authorization code with PKCE)."""

    issuer: str
    client_id: str | None = Field(description="the page's public client; None: this server takes tokens but the "
                                  "page offers no sign-in")
    scopes: str
    authorization_endpoint: str | None
    token_endpoint: str | None
    end_session_endpoint: str | None
    problem: str | None = Field(description="why the issuer's discovery document could not be read, if it could not")


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
    max_batch_prompts: int = Field(description="prompts of one POST /api/v1/generations/batch")
    max_continue_seconds: float = Field(description="longest audio a generation may continue")
    max_body_bytes: int = Field(description="largest request body (an uploaded clip is in it, base64)")
    settings: dict[str, SettingInfo] = Field(description="default and range of each generation setting, as the "
                                             "API applies them (a field left out gets its default)")
    formats: list[str]
    example_prompts: list[str]
    oidc: OidcInfo | None = Field(default=None, description="sign-in at an OpenID Connect issuer; None: off")


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
