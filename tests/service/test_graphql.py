"""GraphQL queries and mutations at /graphql, over HTTP (httpx) against a real server on loopback.

The same service as REST: the jobs one API makes the other shows, the limits and their words are REST's, the
cursor of one lists the other's pages, the guards refuse the same requests. Subscriptions: test_graphql_ws.py.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql_helpers import (
    CANCEL,
    CREATE,
    DELETE,
    GET,
    GRAPHQL,
    LIST,
    VARIATION,
    TransportWS,
    create,
    data,
    error,
    post,
    start_keys_server,
    wait_state,
)
from svc_helpers import LiveServer, api_settings, start_server, wait_final
from websockets.exceptions import InvalidStatus

from soundgen.lm.sampling_params import CFG_COEF, TOP_K

G = "/api/v1/generations"


def as_rest(job: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL generation in the REST body's shape (downloads as a mapping)."""
    results = [{**r, "downloads": {d["format"]: d["url"] for d in r["downloads"]}} for r in job["results"]]
    return {**job, "results": results}


def rest_error(client: httpx.Client, body: dict[str, Any]) -> str:
    r = client.post(G, json=body)
    assert r.status_code == 422, r.text
    message: str = r.json()["error"]
    return message


# -- queries and mutations over HTTP ----------------------------------------------------------------------------


def test_a_generation_made_here_is_the_one_rest_shows(server: LiveServer) -> None:
    c = server.client()
    job = create(c, prompt="  rain on a tin roof ", duration=0.5, seed=7, cfg_coef=2.5, top_k=50, top_p=0.5,
                 temperature=0.9, negative_prompt="wind")
    assert job["state"] == "queued" and job["prompt"] == "rain on a tin roof" and job["seed"] == 7
    assert (job["cfg_coef"], job["top_k"], job["top_p"], job["temperature"]) == (2.5, 50, 0.5, 0.9)
    wait_state(c, job["id"], {"succeeded"})
    done = data(c, GET, {"id": job["id"]})["generation"]
    rest = c.get(f"{G}/{job['id']}").json()
    assert as_rest(done) == {k: rest[k] for k in done}
    assert done["progress"] == 100.0 and len(done["results"]) == 1
    audio = c.get(done["results"][0]["audio_url"])
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    # Fields left out get REST's defaults.
    plain = create(c, prompt="a bell", duration=0.5)
    rest_plain = c.post(G, json={"prompt": "a bell", "duration": 0.5}).json()
    for name in ("count", "cfg_coef", "temperature", "top_k", "top_p", "negative_prompt"):
        assert plain[name] == rest_plain[name], name
    wait_final(c, plain["id"])
    wait_final(c, rest_plain["id"])


def test_listing_has_rests_filters_and_cursor(server: LiveServer) -> None:
    c = server.client()
    ids = [create(c, prompt=f"listing-marker {i}", duration=0.3)["id"] for i in range(3)]
    for job_id in ids:
        wait_final(c, job_id)
    page1 = data(c, LIST, {"limit": 2, "q": "LISTING-marker"})["generations"]
    assert [j["id"] for j in page1["items"]] == ids[::-1][:2] and page1["next_cursor"]
    page2 = data(c, LIST, {"limit": 2, "q": "listing-marker", "cursor": page1["next_cursor"]})["generations"]
    assert [j["id"] for j in page2["items"]] == ids[:1] and page2["next_cursor"] is None
    # The same pages, and the same cursor, on REST.
    rest1 = c.get(G, params={"limit": 2, "q": "listing-marker"}).json()
    assert [j["id"] for j in rest1["items"]] == [j["id"] for j in page1["items"]]
    assert rest1["next_cursor"] == page1["next_cursor"]
    rest2 = c.get(G, params={"limit": 2, "q": "listing-marker", "cursor": page1["next_cursor"]}).json()
    assert [j["id"] for j in rest2["items"]] == ids[:1]
    # States filter.
    def listed(states: list[str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = data(c, LIST, {"limit": 10, "q": "listing-marker", "states": states})[
            "generations"]["items"]
        return items

    assert len(listed(["succeeded"])) == 3 and listed(["failed", "queued"]) == []
    err = error(c, LIST, {"limit": 10, "states": ["finished"]})
    assert "GenerationState" in err["message"] and "finished" in err["message"]


def test_limits_and_validation_are_rests(server: LiveServer) -> None:
    c = server.client()
    s = server.settings
    bodies = [
        {"prompt": "   "},
        {"prompt": "x" * (s.max_prompt_chars + 1)},
        {"prompt": "rain", "negative_prompt": "y" * (s.max_prompt_chars + 1)},
        {"prompt": "rain", "duration": s.max_duration + 1},
        {"prompt": "rain", "duration": 0.0},
        {"prompt": "rain", "count": s.max_count + 1},
        {"prompt": "rain", "top_k": int(TOP_K.maximum) + 1},
        {"prompt": "rain", "cfg_coef": CFG_COEF.maximum + 1},
        {"prompt": "rain", "temperature": -1.0, "top_p": 1.5},
        {"prompt": "rain", "continue_from": "not-a-result"},
        {"prompt": "rain", "audio_prompt": "not base64 audio!"},
        {"prompt": "rain", "duration": None},
    ]
    for body in bodies:
        err = error(c, CREATE, {"input": body})
        assert err["extensions"]["code"] == "BAD_USER_INPUT", (body, err)
        assert err["message"] == rest_error(c, body), body
    assert error(c, CREATE, {"input": {"prompt": "rain"}, "key": "k" * 129})["message"].startswith("idempotency_key:")
    # The listing's bounds: GraphQL and REST draw the line at the same place.
    for limit, ok in ((0, False), (1, True), (100, True), (101, False)):
        assert c.get(G, params={"limit": limit}).status_code == (200 if ok else 422)
        r = post(c, LIST, {"limit": limit})
        assert ("errors" not in r.json()) is ok, (limit, r.text)
    for q, ok in (("q" * 200, True), ("q" * 201, False)):
        assert c.get(G, params={"q": q}).status_code == (200 if ok else 422)
        assert ("errors" not in post(c, LIST, {"limit": 1, "q": q}).json()) is ok
    rest_cursor = c.get(G, params={"cursor": "bm9wZQ=="}).json()["error"]
    assert error(c, LIST, {"limit": 1, "cursor": "bm9wZQ=="})["message"] == rest_cursor
    # A type GraphQL itself refuses: graphql-core's words, still no traceback.
    assert "Int" in error(c, LIST, {"limit": "ten"})["message"]


def test_cancel_delete_and_variations(server: LiveServer) -> None:
    c = server.client()
    job = create(c, prompt="a long drone", duration=200.0, seed=3)
    cancelled = data(c, CANCEL, {"id": job["id"]})["cancel_generation"]
    assert cancelled["id"] == job["id"]
    assert wait_state(c, job["id"], {"succeeded", "failed", "cancelled"})["state"] == "cancelled"
    err = error(c, CANCEL, {"id": job["id"]})
    assert err["extensions"]["code"] == "CONFLICT" and err["message"].startswith("too late to cancel")
    variation = data(c, VARIATION, {"id": job["id"]})["create_variation"]
    assert variation["id"] != job["id"] and variation["state"] == "queued"
    assert (variation["prompt"], variation["duration"], variation["top_k"]) == ("a long drone", 200.0, job["top_k"])
    data(c, CANCEL, {"id": variation["id"]})
    wait_state(c, variation["id"], {"cancelled"})
    for job_id in (job["id"], variation["id"]):
        assert data(c, DELETE, {"id": job_id})["delete_generation"] == job_id
        assert c.get(f"{G}/{job_id}").status_code == 404
        gone = error(c, GET, {"id": job_id})
        assert gone["extensions"]["code"] == "NOT_FOUND" and job_id in gone["message"]
        assert error(c, DELETE, {"id": job_id})["extensions"]["code"] == "NOT_FOUND"
    assert error(c, VARIATION, {"id": "0" * 32})["extensions"]["code"] == "NOT_FOUND"


def test_idempotency_key_gives_the_same_job(server: LiveServer) -> None:
    c = server.client()
    first = data(c, CREATE, {"input": {"prompt": "a door", "duration": 0.3}, "key": "retry-1"})["create_generation"]
    again = data(c, CREATE, {"input": {"prompt": "a door", "duration": 0.3}, "key": "retry-1"})["create_generation"]
    assert again["id"] == first["id"]
    wait_final(c, first["id"])


def test_a_continuation_over_graphql(server: LiveServer) -> None:
    """Audio continued from an upload goes through REST's checks and storage (a base64 WAV of a sine)."""
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    t = np.arange(8000) / 16000
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, format="WAV")
    c = server.client()
    job = create(c, prompt="go on", duration=0.3, audio_prompt=base64.b64encode(buf.getvalue()).decode())
    assert job["continues"] == "upload" and job["prompt_seconds"] == pytest.approx(0.5, abs=0.01)
    assert wait_state(c, job["id"], {"succeeded", "failed"})["state"] == "succeeded"
    variation = data(c, "mutation($id: ID!) { create_variation(id: $id) { id continues } }",
                     {"id": job["id"]})["create_variation"]
    assert variation["continues"] == "upload"
    wait_final(c, variation["id"])


# -- guards and bounds -------------------------------------------------------------------------------------------


def test_the_guards_refuse_what_rest_refuses(server: LiveServer) -> None:
    c = server.client()
    query = {"query": "{ generations { next_cursor } }"}
    evil = c.post(GRAPHQL, json=query, headers={"Origin": "http://evil.example"})
    rest_evil = c.post(G, json={"prompt": "x"}, headers={"Origin": "http://evil.example"})
    assert evil.status_code == rest_evil.status_code == 403 and evil.json() == rest_evil.json()
    assert c.post(GRAPHQL, json=query, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    # Same-origin pages are fine.
    assert c.post(GRAPHQL, json=query, headers={"Origin": server.base_url}).status_code == 200
    # A form or text/plain body (no CORS preflight) is refused before it is read.
    plain = c.post(GRAPHQL, content=b'{"query": "mutation { delete_generation(id: \\"x\\") }"}',
                   headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415
    big = c.post(GRAPHQL, json={"query": "{ generations { next_cursor } }", "x": "y" * server.settings.max_body_bytes})
    assert big.status_code == 413
    # Not taken over GET (a link or an <img> could send it), and a body that is not JSON: GraphQL error bodies.
    got = c.get(GRAPHQL, params={"query": "{ generations { next_cursor } }"})
    assert got.status_code in (400, 405) and got.json()["errors"][0]["message"]
    bad = c.post(GRAPHQL, content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "JSON" in bad.json()["errors"][0]["message"]
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    # A cross-site WebSocket is refused at the handshake.
    with pytest.raises(InvalidStatus) as refused:
        TransportWS(server.ws_url + GRAPHQL, headers={"Origin": "http://evil.example"})
    assert refused.value.response.status_code == 403


def test_a_subscription_over_http_is_refused_with_the_reason(server: LiveServer) -> None:
    err = error(server.client(), 'subscription { generation_events(id: "x") { id } }')
    assert err["extensions"]["code"] == "BAD_REQUEST" and "graphql-transport-ws" in err["message"]


def test_documents_are_bounded(server: LiveServer) -> None:
    c = server.client()
    aliases = " ".join(f"a{i}: generations(limit: 1) {{ next_cursor }}" for i in range(16))
    assert "aliases" in error(c, f"{{ {aliases} }}")["message"]
    tokens = " ".join(["next_cursor"] * 2100)
    assert "token" in error(c, f"{{ generations {{ {tokens} }} }}")["message"].lower()
    # The bounds leave room for tools: a full introspection query runs.
    from graphql import get_introspection_query

    schema = data(c, get_introspection_query(descriptions=True))["__schema"]
    assert {"Generation", "GenerationInput", "GenerationEvent"} <= {t["name"] for t in schema["types"]}


def test_an_unexpected_error_is_masked() -> None:
    """A bug in a resolver reaches the client as one generic sentence, never its message or a traceback."""
    import strawberry

    from soundgen.service.gql.errors import INTERNAL, ApiError, ApiErrors

    @strawberry.type
    class Query:
        @strawberry.field
        def broken(self) -> int:
            raise RuntimeError("secret: /srv/soundgen/db password=hunter2")

        @strawberry.field
        def refused(self) -> int:
            raise ApiError("no such thing", "NOT_FOUND")

    schema = strawberry.Schema(query=Query, extensions=[ApiErrors])
    result = schema.execute_sync("{ broken }")
    assert result.errors is not None and [e.message for e in result.errors] == [INTERNAL]
    assert result.errors[0].extensions == {"code": "INTERNAL_SERVER_ERROR"}
    refused = schema.execute_sync("{ refused }")
    assert refused.errors is not None and refused.errors[0].formatted["extensions"] == {"code": "NOT_FOUND"}


# -- API keys and isolation ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    live, keys = start_keys_server(tmp_path_factory.mktemp("gqlkeys"))
    yield live, keys
    live.stop()


def test_keys_are_needed_and_each_sees_only_its_own(keys_server: tuple[LiveServer, dict[str, str]]) -> None:
    live, keys = keys_server
    for token in (None, keys["alice"][:-4] + "AAAA"):
        r = post(live.client(token), "{ generations { next_cursor } }")
        rest = live.client(token).get(G)
        assert r.status_code == rest.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["errors"][0]["message"] == rest.json()["error"]
        assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" and r.json()["data"] is None
    alice, bob = live.client(keys["alice"]), live.client(keys["bob"])
    job = create(alice, prompt="alice's secret sound", duration=0.3)
    assert data(alice, GET, {"id": job["id"]})["generation"]["prompt"] == "alice's secret sound"
    for op in (GET, CANCEL, DELETE, VARIATION):
        assert error(bob, op, {"id": job["id"]})["extensions"]["code"] == "NOT_FOUND", op
    assert data(bob, LIST, {"limit": 100})["generations"]["items"] == []
    assert bob.get(f"{G}/{job['id']}").status_code == 404
    assert [j["id"] for j in data(alice, LIST, {"limit": 100})["generations"]["items"]] == [job["id"]]
    wait_final(alice, job["id"])


def test_the_quota_counts_both_apis(keys_server: tuple[LiveServer, dict[str, str]]) -> None:
    live, keys = keys_server
    carol = live.client(keys["carol"])
    first = carol.post(G, json={"prompt": "a long hum", "duration": 200.0}).json()
    second = create(carol, prompt="a long buzz", duration=200.0)
    err = error(carol, CREATE, {"input": {"prompt": "one too many", "duration": 200.0}})
    assert err["extensions"]["code"] == "RATE_LIMITED" and "may have 2" in err["message"]
    assert carol.post(G, json={"prompt": "one too many"}).status_code == 429
    for job_id in (first["id"], second["id"]):
        data(carol, CANCEL, {"id": job_id})
        wait_state(carol, job_id, {"cancelled"})


def test_on_each_database(tmp_path: Path, db_url: str) -> None:
    """Create, read, list by cursor, cancel and delete on SQLite and on PostgreSQL."""
    live = start_server(api_settings(tmp_path / "svc", db_url))
    try:
        c = live.client()
        ids = [create(c, prompt=f"on each database {i}", duration=0.3)["id"] for i in range(2)]
        for job_id in ids:
            assert wait_state(c, job_id, {"succeeded", "failed"})["state"] == "succeeded"
        page = data(c, LIST, {"limit": 1})["generations"]
        page2 = data(c, LIST, {"limit": 1, "cursor": page["next_cursor"]})["generations"]
        assert [page["items"][0]["id"], page2["items"][0]["id"]] == ids[::-1] and page2["next_cursor"] is None
        long = create(c, prompt="a long one", duration=200.0)
        data(c, CANCEL, {"id": long["id"]})
        assert wait_state(c, long["id"], {"cancelled", "succeeded", "failed"})["state"] == "cancelled"
        assert data(c, DELETE, {"id": ids[0]})["delete_generation"] == ids[0]
        assert error(c, GET, {"id": ids[0]})["extensions"]["code"] == "NOT_FOUND"
    finally:
        live.stop()


def test_a_lost_database_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    """The database file deleted under a running server: every operation, and the key check before it, answers
    UNAVAILABLE (503) with REST's words."""
    live, keys = start_keys_server(tmp_path / "svc")
    try:
        c = live.client(keys["alice"])
        create(c, prompt="before", duration=0.3)
        (Path(live.settings.data_dir) / "soundgen.db").unlink()
        rest = c.post(G, json={"prompt": "after"})
        assert rest.status_code == 503
        r = post(c, CREATE, {"input": {"prompt": "after"}})
        assert r.status_code == 503 and r.headers["retry-after"] == "30" and "Traceback" not in r.text
        err = r.json()["errors"][0]
        assert err["extensions"]["code"] == "UNAVAILABLE" and err["message"] == rest.json()["error"]
    finally:
        live.stop()


def test_the_documented_operations_are_valid() -> None:
    """Every GraphQL example of docs/graphql.md parses and validates against the schema."""
    import re
    from pathlib import Path

    from graphql import parse, validate

    from soundgen.service.gql.router import build_schema

    text = (Path(__file__).resolve().parents[2] / "docs" / "graphql.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```graphql\n(.*?)```", text, re.S)
    assert len(blocks) >= 7
    schema = build_schema()
    for block in blocks:
        assert validate(schema._schema, parse(block)) == [], block
