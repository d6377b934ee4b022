"""GraphQL subscriptions over graphql-transport-ws (the ``websockets`` package) against a real server on loopback:
one job's events, all of a caller's, who may listen (keys, OIDC tokens), and errors as GraphQL errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gql_helpers import (
    ALL_EVENTS,
    DELETE,
    GET,
    GRAPHQL,
    JOB_EVENTS,
    LIST,
    TransportWS,
    create,
    data,
    error,
    post,
    start_keys_server,
    wait_state,
)
from svc_helpers import LiveServer, api_settings, start_server, wait_final
from websockets.exceptions import ConnectionClosed

from soundgen.service.db import Database


@pytest.fixture(scope="module")
def keys_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    live, keys = start_keys_server(tmp_path_factory.mktemp("gqlkeys"))
    yield live, keys
    live.stop()


def test_websocket_needs_a_key_at_connection_init(keys_server: tuple[LiveServer, dict[str, str]]) -> None:
    live, keys = keys_server
    url = live.ws_url + GRAPHQL
    for payload, words in (({}, "needs an API key"), ({"Authorization": "Bearer sg_nothing_here"}, "not valid")):
        ws = TransportWS(url, payload)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401, closed.value
        assert words in closed.value.rcvd.reason
    # A key in the payload (what browser clients send), or the upgrade's own header.
    for ws in (TransportWS(url, {"Authorization": f"Bearer {keys['alice']}"}),
               TransportWS(url, headers={"Authorization": f"Bearer {keys['alice']}"})):
        with ws:
            ws.ack()
            ws.subscribe("1", JOB_EVENTS, {"id": "0" * 32})
            [payload] = ws.until_complete("1")
            assert payload["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_each_key_hears_only_its_own_jobs(keys_server: tuple[LiveServer, dict[str, str]]) -> None:
    live, keys = keys_server
    alice, bob = live.client(keys["alice"]), live.client(keys["bob"])
    with TransportWS(live.ws_url + GRAPHQL, {"Authorization": f"Bearer {keys['bob']}"}) as ws:
        ws.ack()
        ws.subscribe("all", ALL_EVENTS)
        theirs = create(alice, prompt="alice again", duration=0.3)
        wait_final(alice, theirs["id"])
        mine = create(bob, prompt="bob's own", duration=0.3)
        first = ws.next_payload("all")["data"]["events"]  # alice's events came before bob's job: none reached him
        assert first["id"] == mine["id"] and first["generation"]["prompt"] == "bob's own"
    wait_final(bob, mine["id"])


def test_a_revoked_key_ends_its_subscriptions(keys_server: tuple[LiveServer, dict[str, str]]) -> None:
    """Within a few seconds, whether the subscription is idle (all jobs) or busy (a running job's steps)."""
    from soundgen.service import jobs
    from soundgen.service.auth import revoke_key

    live, keys = keys_server
    dave = live.client(keys["dave"])
    busy = create(dave, prompt="a long rumble", duration=200.0)
    wait_state(dave, busy["id"], {"running"})
    with TransportWS(live.ws_url + GRAPHQL, {"Authorization": f"Bearer {keys['dave']}"}) as ws:
        ws.ack()
        ws.subscribe("all", ALL_EVENTS)
        ws.subscribe("busy", JOB_EVENTS, {"id": busy["id"]})
        assert ws.next_payload("busy")["data"]["generation_events"]["generation"]["state"] == "running"
        db = Database(live.settings.db_url)
        try:
            revoke_key(db, keys["dave"].split("_")[1])
            ended = ws.until_all_complete(["all", "busy"], timeout=60)  # at the next check of the key
            for op, payloads in ended.items():
                assert payloads[-1]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", (op, payloads[-1])
                assert "not valid" in payloads[-1]["errors"][0]["message"]
        finally:
            jobs.cancel_job(db, busy["id"], None)  # as the server's owner would: the key can no longer
            db.dispose()


# -- subscriptions ------------------------------------------------------------------------------------------------


def test_one_jobs_progress_until_it_ends(server: LiveServer) -> None:
    c = server.client()
    job = create(c, prompt="footsteps on gravel", duration=1.0)
    with TransportWS(server.ws_url + GRAPHQL) as ws:
        ws.ack()
        ws.subscribe("1", JOB_EVENTS, {"id": job["id"]})
        events = [p["data"]["generation_events"] for p in ws.until_complete("1")]
    assert all(e["type"] == "job" and e["id"] == job["id"] for e in events)
    states = [e["generation"]["state"] for e in events]
    rank = {"queued": 0, "running": 1, "succeeded": 2}
    assert states[-1] == "succeeded" and [rank[s] for s in states] == sorted(rank[s] for s in states)
    steps = [e["generation"]["step"] for e in events if e["generation"]["state"] == "running"]
    assert steps == sorted(steps)
    assert events[-1]["generation"]["progress"] == 100.0 and events[-1]["generation"]["results"] == [{"index": 0}]
    # A job that has ended: its state, then complete.
    with TransportWS(server.ws_url + GRAPHQL) as ws:
        ws.ack()
        ws.subscribe("again", JOB_EVENTS, {"id": job["id"]})
        [again] = ws.until_complete("again")
    assert again["data"]["generation_events"]["generation"]["state"] == "succeeded"


def test_all_jobs_new_ones_ends_and_deletions(server: LiveServer) -> None:
    c = server.client()
    with TransportWS(server.ws_url + GRAPHQL) as ws:
        ws.ack()
        ws.subscribe("all", ALL_EVENTS)
        ids = {create(c, prompt=f"all-events {i}", duration=0.3)["id"] for i in range(2)}
        seen: dict[str, list[str]] = {i: [] for i in ids}
        while any(states[-1:] != ["succeeded"] for states in seen.values()):
            event = ws.next_payload("all")["data"]["events"]
            if event["id"] in seen:
                seen[event["id"]].append(event["generation"]["state"])
        assert all(states[0] == "queued" for states in seen.values()), seen
        gone = sorted(ids)[0]
        data(c, DELETE, {"id": gone})
        while True:
            event = ws.next_payload("all")["data"]["events"]
            if event["id"] == gone:
                break
        assert event == {"type": "deleted", "id": gone, "generation": None}
        # Several subscriptions share one socket; completing one leaves the others.
        ws.send({"id": "all", "type": "complete"})
        ws.subscribe("one", JOB_EVENTS, {"id": sorted(ids)[1]})
        [last] = ws.until_complete("one")
        assert last["data"]["generation_events"]["generation"]["state"] == "succeeded"


def test_subscription_errors_are_graphql_errors(server: LiveServer) -> None:
    with TransportWS(server.ws_url + GRAPHQL) as ws:
        ws.ack()
        ws.subscribe("1", JOB_EVENTS, {"id": "f" * 32})
        [payload] = ws.until_complete("1")
        assert payload["data"] is None
        assert payload["errors"][0]["message"].startswith(f"no generation with id {'f' * 32}")
        aliases = " ".join(f"a{i}: events {{ id }}" for i in range(16))
        ws.subscribe("2", f"subscription {{ {aliases} }}")
        message = ws.recv()
        assert message["id"] == "2" and message["type"] in ("error", "next"), message
        assert "aliases" in str(message["payload"])


# -- OIDC bearer tokens -------------------------------------------------------------------------------------------


def test_oidc_tokens_over_http_and_websocket(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A token of the configured issuer is a caller as a key is (each subject its own jobs); a bad one is refused
    with REST's reason, over HTTP and at connection_init."""
    from oidc_issuer import make_key, start_issuer

    issuer = start_issuer([make_key("rsa-1", "RS256"), make_key("ec-1", "ES256")])
    settings = api_settings(tmp_path_factory.mktemp("gqloidc")).model_copy(update={
        "oidc_issuer": issuer.url, "oidc_audience": "soundgen-api", "oidc_refetch_seconds": 0.0})
    live = start_server(settings)
    try:
        alice = live.client(issuer.token(issuer.keys[1], sub="alice"))
        bob = live.client(issuer.token(sub="bob"))
        job = create(alice, prompt="alice signed in", duration=0.3)
        assert error(bob, GET, {"id": job["id"]})["extensions"]["code"] == "NOT_FOUND"
        assert data(bob, LIST, {"limit": 10})["generations"]["items"] == []
        expired = live.client(issuer.token(sub="alice", lifetime=-3600))
        refused = post(expired, "{ generations { next_cursor } }")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        assert refused.json()["errors"][0]["message"].startswith("the sign-in token was refused")
        url = live.ws_url + GRAPHQL
        with TransportWS(url, {"Authorization": f"Bearer {issuer.token(sub='alice')}"}) as ws:
            ws.ack()
            ws.subscribe("1", JOB_EVENTS, {"id": job["id"]})
            assert ws.until_complete("1")[-1]["data"]["generation_events"]["generation"]["state"] == "succeeded"
        ws = TransportWS(url, {"Authorization": f"Bearer {issuer.token(sub='alice', aud='someone-else')}"})
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert closed.value.rcvd.reason.startswith("the sign-in token was refused")
    finally:
        live.stop()
        issuer.stop()

