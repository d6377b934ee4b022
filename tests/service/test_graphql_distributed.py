"""GraphQL with Celery on Redis: two API servers (no model) and one ``soundgen worker``, all real subprocesses on
loopback sharing one database, storage and a ``redis-server`` the suite starts. A job made over GraphQL on one
server is run by the worker, and the other server's GraphQL subscriptions follow it step by step (events come over
Redis pub/sub); a cancel sent to that other server reaches the worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gql_helpers import ALL_EVENTS, CANCEL, GRAPHQL, JOB_EVENTS, TransportWS, create, data, wait_state
from redis_server import RedisServer
from svc_helpers import free_port, spawn_soundgen, stop_processes, wait_process_ready


@pytest.fixture
def two_servers(redis_server: RedisServer, tmp_path: Path) -> Iterator[list[str]]:
    """The addresses of two API servers; one worker runs their jobs."""
    redis_server.flush()
    env = {**os.environ, "SOUNDGEN_BROKER_URL": redis_server.url, "SOUNDGEN_TORCH_THREADS": "1",
           "SOUNDGEN_PROGRESS_PERSIST_SECONDS": "0.2", "SOUNDGEN_NO_PROGRESS": "1", "SOUNDGEN_MAX_DURATION": "300"}
    data_dir = str(tmp_path / "data")
    procs = [spawn_soundgen(["worker", "--data-dir", data_dir], env, tmp_path / "worker.log")]
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for i, port in enumerate(ports):
            log = tmp_path / f"api{i}.log"
            procs.append(spawn_soundgen(["serve", "--port", str(port), "--data-dir", data_dir], env, log))
            wait_process_ready(bases[i], procs[-1], log)
        yield bases
    finally:
        stop_processes(procs)


@pytest.mark.timeout(900)  # three processes that each import torch, on a machine that may be busy
def test_the_other_servers_subscriptions_follow_a_job_and_its_cancel_reaches_the_worker(
        two_servers: list[str]) -> None:
    a, b = (httpx.Client(base_url=base, timeout=30) for base in two_servers)
    probe = create(a, prompt="probe", duration=0.3)  # the worker has loaded its model once this ran
    assert wait_state(a, probe["id"], {"succeeded", "failed"}, timeout=240)["state"] == "succeeded"
    with TransportWS(two_servers[1].replace("http://", "ws://") + GRAPHQL) as ws:
        ws.ack()
        ws.subscribe("all", ALL_EVENTS)
        job = create(a, prompt="footsteps in snow", duration=2.0)
        ws.subscribe("one", JOB_EVENTS, {"id": job["id"]})
        events = [p["data"]["generation_events"]["generation"] for p in ws.until_complete("one", timeout=240)]
        assert events[-1]["state"] == "succeeded" and events[-1]["results"] == [{"index": 0}]
        steps = [e["step"] for e in events if e["state"] == "running"]
        assert len(set(steps)) >= 3 and steps == sorted(steps), steps  # step by step, not only the end
        # The subscription to all jobs heard the same job end.
        while True:
            event = ws.next_payload("all", timeout=240)["data"]["events"]
            if event["id"] == job["id"] and event["generation"]["state"] == "succeeded":
                break
        long = create(a, prompt="a long drone", duration=200.0)
        wait_state(a, long["id"], {"running"}, timeout=120)
        data(b, CANCEL, {"id": long["id"]})
        assert wait_state(a, long["id"], {"cancelled", "succeeded", "failed"}, timeout=120)["state"] == "cancelled"
