"""Job events pushed to WebSocket subscribers the moment a job changes.

The worker (a thread) calls :meth:`EventBus.publish`; subscribers are asyncio queues on the server's event
loop. Publishing from a thread goes through ``call_soon_threadsafe``, which keeps the order of events.
With workers in other processes (Celery), ``broker.RedisEventBus`` feeds the same interface from Redis pub/sub;
the WebSocket handlers also re-read the database now and then, so no state change is ever missed for good.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
STATE_RANK = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2, "cancelled": 2}


@dataclass(eq=False)
class Subscription:
    """One subscriber: the events of one job (``job_id``) or of all jobs of ``owner``."""

    owner: str | None
    job_id: str | None
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))


class EventBus:
    """In-process fan-out of job events to subscribers."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the event loop that owns the subscriber queues (done at server start)."""
        self._loop = loop

    def subscribe(self, owner: str | None, job_id: str | None = None) -> Subscription:
        """Start receiving events of ``job_id`` (or of every job of ``owner`` when ``job_id`` is None)."""
        sub = Subscription(owner=owner, job_id=job_id)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub``."""
        with self._lock:
            self._subs.discard(sub)

    def wants(self, owner: str, job_id: str) -> bool:
        """Whether any subscriber would receive an event of ``job_id`` (lets publishers skip building it)."""
        with self._lock:
            return any((sub.owner is None or sub.owner == owner) and (sub.job_id is None or sub.job_id == job_id)
                       for sub in self._subs)

    def send_cancel(self, job_id: str) -> None:
        """Ask other processes to stop ``job_id`` (none here: the in-process worker is told directly)."""

    def close(self) -> None:
        """Stop delivering (nothing to stop in-process)."""

    def publish(self, owner: str, event: dict[str, Any]) -> None:
        """Deliver ``event`` (with an ``id`` key) to every matching subscriber; safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._fanout, owner, event)
        except RuntimeError:  # loop shut down between the check and the call
            pass

    def _fanout(self, owner: str, event: dict[str, Any]) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if sub.owner is not None and sub.owner != owner:
                continue
            if sub.job_id is not None and sub.job_id != event.get("id"):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("a WebSocket subscriber is too slow; dropping an event for it")


def is_newer(event: dict[str, Any], last: dict[str, Any] | None) -> bool:
    """Whether ``event`` moves a job forward from ``last`` (drops stale events that arrive late)."""
    if last is None or event.get("type") != "job" or last.get("type") != "job":
        return True
    rank, last_rank = STATE_RANK[event["state"]], STATE_RANK[last["state"]]
    if rank != last_rank:
        return rank > last_rank
    if event["state"] == "running":
        return bool(event["step"] > last["step"] or event["total_steps"] != last["total_steps"])
    return event != last
