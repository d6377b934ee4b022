"""WebSockets that push job state and progress the moment they change."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from soundgen.service import jobs
from soundgen.service.core import Service
from soundgen.service.deps import resolve_owner, websocket_token
from soundgen.service.events import Subscription, is_newer
from soundgen.service.models import FINAL_STATES

router = APIRouter(prefix="/api/v1", tags=["events"])
RESYNC_SECONDS = 5.0  # re-read the database (and the key) this often, in case a worker elsewhere missed the bus


def _close_code(e: HTTPException) -> int:
    """4401 for a missing or refused key or token; 1013 (try again later) when the sign-in issuer is unreachable."""
    return 4401 if e.status_code == 401 else 1013


async def _accept(ws: WebSocket) -> str | None:
    """Authenticate and accept; None (after closing with 4401) when the key is missing or wrong."""
    service: Service = ws.app.state.service
    token, subprotocol = websocket_token(ws)
    try:
        owner = await run_in_threadpool(resolve_owner, service, token)
    except HTTPException as e:
        await ws.close(code=_close_code(e), reason=str(e.detail)[:120])
        return None
    await ws.accept(subprotocol=subprotocol)
    return owner


async def _key_still_valid(ws: WebSocket) -> bool:
    """Check the socket's key again (every RESYNC_SECONDS): a key revoked since it connected closes it (4401)."""
    service: Service = ws.app.state.service
    if not service.settings.auth_required:
        return True
    try:
        await run_in_threadpool(resolve_owner, service, websocket_token(ws)[0])
    except HTTPException as e:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(code=_close_code(e), reason=str(e.detail)[:120])
        return False
    return True


async def _watch_disconnect(ws: WebSocket, sub: Subscription) -> None:
    """Read (and ignore) client messages; tell the handler when the client goes away."""
    try:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        with contextlib.suppress(asyncio.QueueFull):
            sub.queue.put_nowait({"type": "_closed"})


def _snapshot(service: Service, job_id: str, owner: str) -> dict[str, Any] | None:
    with service.db.session() as s:
        try:
            return jobs.job_event(jobs.get_job(s, job_id, owner))
        except jobs.JobNotFound:
            return None


@router.websocket("/generations/{job_id}/events")
async def job_events(ws: WebSocket, job_id: str) -> None:
    """Events of one job: its current state first, then every change until it ends, then close (1000)."""
    owner = await _accept(ws)
    if owner is None:
        return
    service: Service = ws.app.state.service
    sub = service.bus.subscribe(owner, job_id)
    try:
        last = await run_in_threadpool(_snapshot, service, job_id, owner)
        if last is None:
            await ws.send_json({"type": "error", "error": f"no generation with id {job_id}"})
            await ws.close(code=4404)
            return
        await ws.send_json(last)
        watcher = asyncio.create_task(_watch_disconnect(ws, sub))
        while last.get("type") == "job" and last["state"] not in FINAL_STATES:
            try:
                event = await asyncio.wait_for(sub.queue.get(), RESYNC_SECONDS)
            except TimeoutError:
                if not await _key_still_valid(ws):
                    watcher.cancel()
                    return
                fresh = await run_in_threadpool(_snapshot, service, job_id, owner)
                event = fresh if fresh is not None else {"type": "deleted", "id": job_id}
            if event.get("type") == "_closed":
                return
            if is_newer(event, last):
                await ws.send_json(event)
                last = event
            if event.get("type") == "deleted":
                break
        watcher.cancel()
        await ws.close(code=1000)
    except WebSocketDisconnect:
        pass
    finally:
        service.bus.unsubscribe(sub)


@router.websocket("/events")
async def all_events(ws: WebSocket) -> None:
    """Events of every job of the caller (new jobs, progress, ends, deletions) while connected."""
    owner = await _accept(ws)
    if owner is None:
        return
    service: Service = ws.app.state.service
    sub = service.bus.subscribe(owner, None)
    last: dict[str, dict[str, Any]] = {}
    try:
        await ws.send_json({"type": "hello", "owner": owner})
        watcher = asyncio.create_task(_watch_disconnect(ws, sub))
        while True:
            try:
                event = await asyncio.wait_for(sub.queue.get(), RESYNC_SECONDS)
            except TimeoutError:
                if not await _key_still_valid(ws):
                    watcher.cancel()
                    return
                continue
            if event.get("type") == "_closed":
                watcher.cancel()
                return
            job_id = str(event.get("id"))
            if is_newer(event, last.get(job_id)):
                last[job_id] = event
                await ws.send_json(event)
            if event.get("type") == "deleted" or event.get("state") in FINAL_STATES:
                last.pop(job_id, None)
    except WebSocketDisconnect:
        pass
    finally:
        service.bus.unsubscribe(sub)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close()
