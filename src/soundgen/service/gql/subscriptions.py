"""Subscriptions (graphql-transport-ws): one job's events until it ends, and every job of the caller's.

They read the service's event bus as the REST WebSockets do (routes/events.py): the same events, the same order
(stale ones dropped), and the same fallback: after a few seconds without an event the job is read again from the
database (a change the bus missed still arrives). The caller's key or token is checked again every few seconds,
busy or not, so a revoked key or an expired token ends the subscription with an UNAUTHENTICATED error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import strawberry
from fastapi.concurrency import run_in_threadpool
from strawberry.types import Info

from soundgen.service import jobs
from soundgen.service.events import is_newer
from soundgen.service.gql.errors import ApiError
from soundgen.service.gql.types import GenerationEvent
from soundgen.service.models import FINAL_STATES
from soundgen.service.routes.events import RESYNC_SECONDS

if TYPE_CHECKING:
    from soundgen.service.core import Service
    from soundgen.service.gql.context import Context


def _snapshot(service: Service, job_id: str, owner: str) -> dict[str, Any] | None:
    """The event of the job's state now (None: no such job of this owner)."""
    with service.db.session() as s:
        try:
            return jobs.job_event(jobs.get_job(s, job_id, owner))
        except jobs.JobNotFound:
            return None


def _ended(event: dict[str, Any]) -> bool:
    return event.get("type") == "deleted" or event.get("state") in FINAL_STATES


async def _job_events(ctx: Context, job_id: str) -> AsyncGenerator[dict[str, Any], None]:
    """The events of one job: its state now, then each change until it ends or is deleted."""
    service, owner = ctx.service, ctx.owner
    sub = service.bus.subscribe(owner, job_id)  # before the snapshot, so that no change falls between the two
    try:
        last = await run_in_threadpool(_snapshot, service, job_id, owner)
        if last is None:
            raise ApiError(f"no generation with id {job_id} (it may have been deleted)", "NOT_FOUND", status=404)
        yield last
        while not _ended(last):
            await ctx.recheck(RESYNC_SECONDS)
            try:
                event = await asyncio.wait_for(sub.queue.get(), RESYNC_SECONDS)
            except TimeoutError:
                fresh = await run_in_threadpool(_snapshot, service, job_id, owner)
                event = fresh if fresh is not None else {"type": "deleted", "id": job_id}
            if is_newer(event, last):
                yield event
                last = event
    finally:
        service.bus.unsubscribe(sub)


async def _all_events(ctx: Context) -> AsyncGenerator[dict[str, Any], None]:
    """The events of every job of the caller (new ones, progress, ends, deletions) for as long as it listens."""
    service = ctx.service
    sub = service.bus.subscribe(ctx.owner, None)
    last: dict[str, dict[str, Any]] = {}
    try:
        while True:
            await ctx.recheck(RESYNC_SECONDS)
            try:
                event = await asyncio.wait_for(sub.queue.get(), RESYNC_SECONDS)
            except TimeoutError:
                continue
            job_id = str(event.get("id"))
            if is_newer(event, last.get(job_id)):
                last[job_id] = event
                yield event
            if _ended(event):
                last.pop(job_id, None)
    finally:
        service.bus.unsubscribe(sub)


@strawberry.type(description="Live events (REST: the WebSockets /api/v1/generations/{id}/events and /api/v1/events).")
class Subscription:
    @strawberry.subscription(description="One generation: its state now, then every change (progress, end) until "
                                         "it ends or is deleted; then the subscription completes.")
    async def generation_events(self, info: Info[Any, Any], id: strawberry.ID) -> AsyncGenerator[GenerationEvent, None]:
        async for event in _job_events(info.context, str(id)):
            yield GenerationEvent.from_event(event)

    @strawberry.subscription(description="Every generation of yours while subscribed: new ones, progress, ends "
                                         "and deletions.")
    async def events(self, info: Info[Any, Any]) -> AsyncGenerator[GenerationEvent, None]:
        async for event in _all_events(info.context):
            yield GenerationEvent.from_event(event)
