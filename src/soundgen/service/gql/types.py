"""The GraphQL shapes: a generation (the REST ``JobOut``), a page of them, an event, and the input of a new one.

Each field has the REST API's name and, where the pydantic schema has one, its description (read from
``schemas.py``, never copied), so the two APIs describe the same things in the same words.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from pydantic import BaseModel

from soundgen.service.models import JOB_STATES
from soundgen.service.schemas import GenerationCreate, JobOut


def _doc(model: type[BaseModel], name: str, fallback: str | None = None) -> str | None:
    """The description of field ``name`` of ``model`` (``fallback`` where it has none)."""
    return model.model_fields[name].description or fallback


def _field(name: str, fallback: str | None = None) -> Any:
    return strawberry.field(description=_doc(JobOut, name, fallback))


@strawberry.enum(description="Where a generation stands; succeeded, failed and cancelled are final.")
class GenerationState(Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


assert tuple(s.value for s in GenerationState) == JOB_STATES, "GenerationState must list the job states"


@strawberry.type(description="One audio file of a result, in one format.")
class Download:
    format: str = strawberry.field(description="wav, flac, opus, ogg or mp3")
    url: str = strawberry.field(description="path on this server (GET it with the same key)")


@strawberry.type(description="One generated sound of a generation, with where to fetch it.")
class Result:
    index: int
    audio_url: str = strawberry.field(description="the WAV file (path on this server)")
    image_url: str = strawberry.field(description="its spectrogram as PNG")
    downloads: list[Download]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Result:
        return cls(index=body["index"], audio_url=body["audio_url"], image_url=body["image_url"],
                   downloads=[Download(format=f, url=u) for f, u in body["downloads"].items()])


@strawberry.type(description="A generation job: what was asked, where it stands, and its sounds once it succeeded.")
class Generation:
    id: strawberry.ID
    state: GenerationState
    prompt: str = _field("prompt", "what the sound should be")
    duration: float = strawberry.field(description="seconds of audio per sound")
    count: int = strawberry.field(description="how many sounds")
    seed: int
    cfg_coef: float
    temperature: float
    top_k: int
    top_p: float
    negative_prompt: str | None
    continues: str | None = _field("continues")
    prompt_seconds: float | None = _field("prompt_seconds")
    progress: float = _field("progress")
    step: int
    total_steps: int
    error: str | None = strawberry.field(description="why it failed or was cancelled")
    attempts: int
    sample_rate: int | None
    elapsed: float | None = strawberry.field(description="seconds the generation took")
    created_at: float = strawberry.field(description="Unix time, seconds")
    updated_at: float
    started_at: float | None
    finished_at: float | None
    queue_position: int | None = _field("queue_position")
    eta_seconds: float | None = _field("eta_seconds")
    results: list[Result]
    archive_url: str | None = _field("archive_url")

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Generation:
        """The GraphQL object of a job's REST body (``jobs.job_json``, a ``JobOut`` dump, or an event)."""
        fields = {k: v for k, v in body.items() if k in _PLAIN}
        return cls(id=strawberry.ID(body["id"]), state=GenerationState(body["state"]),
                   results=[Result.from_json(r) for r in body.get("results", [])], **fields)


_PLAIN = frozenset(JobOut.model_fields) - {"id", "state", "results"}


@strawberry.type(description="One page of generations, newest first; pass next_cursor as cursor for the next one.")
class GenerationPage:
    items: list[Generation]
    next_cursor: str | None


@strawberry.enum(description="What an event says: a job's new state or progress, or that it was deleted.")
class EventType(Enum):
    job = "job"
    deleted = "deleted"


@strawberry.type(description="A change of one generation: its new state (type job) or its deletion (type deleted).")
class GenerationEvent:
    type: EventType
    id: strawberry.ID
    generation: Generation | None = strawberry.field(description="the job as it is now; null once deleted")

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> GenerationEvent:
        """The GraphQL object of an event of the bus (the REST WebSockets' message)."""
        if event.get("type") == "deleted":
            return cls(type=EventType.deleted, id=strawberry.ID(str(event["id"])), generation=None)
        return cls(type=EventType.job, id=strawberry.ID(str(event["id"])), generation=Generation.from_json(event))


def _input(name: str) -> Any:
    return strawberry.field(default=strawberry.UNSET, description=_doc(GenerationCreate, name))


@strawberry.input(description="A generation to queue. Fields left out get the REST API's defaults and every limit "
                              "is the REST API's (GET /api/v1/info lists them).")
class GenerationInput:
    prompt: str = strawberry.field(description=_doc(GenerationCreate, "prompt"))
    duration: float | None = _input("duration")
    count: int | None = _input("count")
    seed: int | None = _input("seed")
    cfg_coef: float | None = _input("cfg_coef")
    temperature: float | None = _input("temperature")
    top_k: int | None = _input("top_k")
    top_p: float | None = _input("top_p")
    negative_prompt: str | None = _input("negative_prompt")
    continue_from: str | None = _input("continue_from")
    audio_prompt: str | None = _input("audio_prompt")

    def request(self) -> GenerationCreate:
        """The REST request of this input (validated there: a field out of range raises pydantic's error).

        A field left out is left out of the request too, so its default is GenerationCreate's; ``null`` is sent
        as null (``seed: null`` draws a seed, ``duration: null`` is refused as not a number).
        """
        given = {k: v for k, v in vars(self).items() if v is not strawberry.UNSET}
        return GenerationCreate.model_validate(given)
