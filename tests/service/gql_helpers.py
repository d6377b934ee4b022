"""GraphQL clients of the service tests: POSTs with httpx, and graphql-transport-ws over the ``websockets`` package."""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import httpx
from svc_helpers import LiveServer, api_settings, start_server
from websockets.sync.client import ClientConnection, connect

from soundgen.service.auth import create_key
from soundgen.service.db import Database

GRAPHQL = "/graphql"
PROTOCOL = "graphql-transport-ws"
# The operations of the tests (REST's field names: the schema does not camel-case).
JOB = ("id state prompt duration count seed cfg_coef temperature top_k top_p negative_prompt continues prompt_seconds "
       "progress step total_steps error attempts sample_rate elapsed created_at updated_at started_at finished_at "
       "archive_url results { index audio_url image_url downloads { format url } }")
CREATE = ("mutation($input: GenerationInput!, $key: String) { "
          f"create_generation(input: $input, idempotency_key: $key) {{ {JOB} }} }}")
GET = f"query($id: ID!) {{ generation(id: $id) {{ {JOB} }} }}"
LIST = ("query($limit: Int!, $cursor: String, $states: [GenerationState!], $q: String) { "
        "generations(limit: $limit, cursor: $cursor, states: $states, q: $q) { items { id state } next_cursor } }")
CANCEL = "mutation($id: ID!) { cancel_generation(id: $id) { id state } }"
DELETE = "mutation($id: ID!) { delete_generation(id: $id) }"
VARIATION = "mutation($id: ID!) { create_variation(id: $id) { id prompt duration cfg_coef top_k seed state } }"
JOB_EVENTS = ("subscription($id: ID!) { generation_events(id: $id) { type id generation { state step total_steps "
              "progress results { index } } } }")
ALL_EVENTS = "subscription { events { type id generation { state prompt } } }"


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """Queue a generation with the ``create_generation`` mutation; returns the new job."""
    job: dict[str, Any] = data(client, CREATE, {"input": fields})["create_generation"]
    return job


def start_keys_server(data_dir: Path) -> tuple[LiveServer, dict[str, str]]:
    """A server that needs API keys (quota 2 active jobs a key, no rate limit), and keys of four users."""
    settings = api_settings(data_dir).model_copy(update={
        "require_auth": True, "rate_limit_per_minute": 0.0, "max_active_jobs_per_key": 2})
    live = start_server(settings)
    db = Database(live.settings.db_url)
    keys = {name: create_key(db, name).secret for name in ("alice", "bob", "carol", "dave")}
    db.dispose()
    return live, keys


def post(client: httpx.Client, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
    """POST one operation to /graphql."""
    return client.post(GRAPHQL, json={"query": query, "variables": variables or {}}, **kwargs)


def data(client: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The data of an operation that must succeed (200, no errors)."""
    r = post(client, query, variables)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]
    return result


def error(client: httpx.Client, query: str, variables: dict[str, Any] | None = None,
          status: int = 200) -> dict[str, Any]:
    """The one GraphQL error of an operation that must fail (a clean error: a message, no traceback)."""
    r = post(client, query, variables)
    assert r.status_code == status, r.text
    errors = r.json()["errors"]
    assert len(errors) == 1, errors
    assert "Traceback" not in r.text and errors[0]["message"], r.text
    err: dict[str, Any] = errors[0]
    return err


def wait_state(client: httpx.Client, job_id: str, states: set[str], timeout: float = 120) -> dict[str, Any]:
    """Poll ``generation(id)`` over GraphQL until its state is one of ``states``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        query = "query($id: ID!) { generation(id: $id) { id state step results { index } } }"
        job: dict[str, Any] = data(client, query, {"id": job_id})["generation"]
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {states} in {timeout} s")


class TransportWS:
    """A graphql-transport-ws client: ``connection_init`` (with ``payload``), then subscriptions by id.

    Args:
        url: the ``ws://.../graphql`` address.
        payload: the ``connection_init`` payload (``{"Authorization": "Bearer <key>"}``).
        headers: extra headers of the upgrade request.
    """

    def __init__(self, url: str, payload: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        self.ws: ClientConnection = connect(url, subprotocols=[PROTOCOL], additional_headers=headers,  # type: ignore[list-item]
                                            open_timeout=30)
        assert self.ws.subprotocol == PROTOCOL
        self.held: defaultdict[str, deque[dict[str, Any]]] = defaultdict(deque)  # messages of other subscriptions
        self.send({"type": "connection_init", "payload": payload or {}})

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def recv(self, timeout: float = 60) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
        return message

    def ack(self) -> None:
        """Wait for the server's ``connection_ack``."""
        message = self.recv(60)
        assert message["type"] == "connection_ack", message

    def subscribe(self, op_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        self.send({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})

    def until_complete(self, op_id: str, timeout: float = 120) -> list[dict[str, Any]]:
        """The payloads of ``op_id``'s ``next`` messages until its ``complete``."""
        return self.until_all_complete([op_id], timeout)[op_id]

    def until_all_complete(self, op_ids: list[str], timeout: float = 120) -> dict[str, list[dict[str, Any]]]:
        """The payloads of each of ``op_ids``' ``next`` messages until every one of them has completed."""
        out: dict[str, list[dict[str, Any]]] = {op: [] for op in op_ids}
        running = set(op_ids)
        deadline = time.monotonic() + timeout
        while running:
            message = self._take(running, deadline)
            if message["type"] == "complete":
                running.discard(message["id"])
            else:
                assert message["type"] == "next", message
                out[message["id"]].append(message["payload"])
        return out

    def next_payload(self, op_id: str, timeout: float = 120) -> dict[str, Any]:
        """The payload of ``op_id``'s next ``next`` message."""
        message = self._take({op_id}, time.monotonic() + timeout)
        assert message["type"] == "next", message
        payload: dict[str, Any] = message["payload"]
        return payload

    def _take(self, op_ids: set[str], deadline: float) -> dict[str, Any]:
        """The next message of one of ``op_ids``: one held back earlier, else the next to arrive; messages of
        other subscriptions that arrive meanwhile are held for whoever asks for them."""
        for op in op_ids:
            if self.held[op]:
                return self.held[op].popleft()
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no message of subscriptions {sorted(op_ids)} in time"
            message = self.recv(left)
            op = message.get("id")
            if op in op_ids:
                return message
            if op is not None:
                self.held[op].append(message)

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> TransportWS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
