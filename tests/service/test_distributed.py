"""Celery on Redis: two API servers and two ``soundgen worker`` processes share one database, storage and broker.

Every process is a real subprocess on loopback (``soundgen serve`` and ``soundgen worker`` with the tiny random
model), the broker a real ``redis-server`` the suite starts. One worker is SIGKILLed in the middle of a job: the
job's lease runs out (10 s here), it goes back to the queue and the other worker runs it; every job ends
``succeeded`` exactly once, and a WebSocket on the server that did not take the job shows its progress step by
step (events come over Redis pub/sub, not from the database).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis_server import RedisServer
from svc_helpers import (
    free_port,
    spawn_soundgen,
    stop_processes,
    wait_final,
    wait_process_ready,
    ws_messages,
)

G = "/api/v1/generations"
LEASE = "10"  # short, so that the test does not wait long; long enough for a heartbeat on a machine under load


@dataclass
class Cluster:
    """The processes of one test and where they keep their data."""

    data: Path
    apis: list[str]
    api_procs: list[subprocess.Popen[bytes]]
    workers: list[subprocess.Popen[bytes]]

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data / "soundgen.db", timeout=30)

    def row(self, job_id: str) -> dict[str, Any]:
        with self.db() as db:
            db.row_factory = sqlite3.Row
            return dict(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())


def _env(redis: RedisServer) -> dict[str, str]:
    return {**os.environ, "SOUNDGEN_BROKER_URL": redis.url, "SOUNDGEN_TORCH_THREADS": "1",
            "SOUNDGEN_LEASE_SECONDS": LEASE, "SOUNDGEN_PROGRESS_PERSIST_SECONDS": "0.2", "SOUNDGEN_NO_PROGRESS": "1",
            # The suite may run niced already: the model processes keep its priority rather than going lower.
            "SOUNDGEN_GENERATOR_NICE": "0"}


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    redis_server.flush()
    env = _env(redis_server)
    data = tmp_path / "data"
    workers = [spawn_soundgen(["worker", "--data-dir", str(data)], env, tmp_path / f"worker{i}.log", verbose=True)
               for i in range(2)]
    ports = [free_port(), free_port()]
    apis = [f"http://127.0.0.1:{p}" for p in ports]
    api_procs = [spawn_soundgen(["serve", "--port", str(p), "--data-dir", str(data)], env, tmp_path / f"api{i}.log",
                                verbose=True)
                 for i, p in enumerate(ports)]
    try:
        for i, (base, proc) in enumerate(zip(apis, api_procs, strict=True)):
            wait_process_ready(base, proc, tmp_path / f"api{i}.log")
        c = Cluster(data, apis, api_procs, workers)
        _wait_workers(c, tmp_path)
        yield c
    finally:
        stop_processes(api_procs + workers)


def _wait_workers(c: Cluster, logs: Path) -> None:
    """Both workers have loaded their model: each ran a probe job (jobs are given to idle workers first)."""
    client = httpx.Client(base_url=c.apis[0], timeout=30)
    deadline = time.monotonic() + 300
    seen: set[str] = set()
    while len(seen) < 2:
        assert time.monotonic() < deadline, "the workers did not both run a job in 300 s:\n" + "\n".join(
            (logs / f"worker{i}.log").read_text(errors="replace")[-2000:] for i in range(2))
        for i, w in enumerate(c.workers):
            assert w.poll() is None, (logs / f"worker{i}.log").read_text(errors="replace")[-3000:]
        probes = [client.post(G, json={"prompt": "probe", "duration": 0.5}).json()["id"] for _ in range(2)]
        for job_id in probes:
            assert wait_final(client, job_id, timeout=300)["state"] == "succeeded"
            seen.add(_pid_of(c.row(job_id)["worker_id"]))


def _pid_of(worker_id: str) -> str:
    """The process id in a ``soundgen worker``'s worker id (``<host>-<pid>-<random>``)."""
    return worker_id.rsplit("-", 2)[-2]


def _collect(url: str, into: list[dict[str, Any]]) -> threading.Thread:
    t = threading.Thread(target=lambda: into.extend(ws_messages(url, timeout=240)), daemon=True)
    t.start()
    return t


def test_a_killed_worker_s_job_runs_again_and_every_job_succeeds_once(cluster: Cluster) -> None:
    a = httpx.Client(base_url=cluster.apis[0], timeout=30)
    b = httpx.Client(base_url=cluster.apis[1], timeout=30)
    doomed = a.post(G, json={"prompt": "long drone", "duration": 30.0}).json()
    # Replica B never saw this job: everything its socket shows came through the broker or its database.
    seen_on_b: list[dict[str, Any]] = []
    watcher = _collect(cluster.apis[1].replace("http://", "ws://") + f"{G}/{doomed['id']}/events", seen_on_b)
    deadline = time.monotonic() + 120
    while (row := cluster.row(doomed["id"]))["progress_step"] < 1:
        assert time.monotonic() < deadline, f"the long job never made progress: {row}"
        time.sleep(0.05)
    victim_pid = _pid_of(row["worker_id"])
    victim = next(w for w in cluster.workers if str(w.pid) == victim_pid)
    others = [a.post(G, json={"prompt": f"short {i}", "duration": 0.5}).json() if i % 2 else
              b.post(G, json={"prompt": f"short {i}", "duration": 0.5}).json() for i in range(6)]
    mid_job = cluster.row(doomed["id"])  # read just before the kill: nothing but the victim can have moved it
    assert mid_job["state"] == "running" and _pid_of(mid_job["worker_id"]) == victim_pid, mid_job
    assert mid_job["progress_step"] < mid_job["progress_total"], mid_job
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)

    for job in [doomed, *others]:
        assert wait_final(a, job["id"], timeout=240)["state"] == "succeeded"
    final = cluster.row(doomed["id"])
    assert final["attempts"] == 2 and _pid_of(final["worker_id"]) != victim_pid
    with cluster.db() as db:
        trail = [s for (s,) in db.execute("SELECT state FROM job_transitions WHERE job_id = ? ORDER BY id",
                                          (doomed["id"],))]
        ends = dict(db.execute("SELECT job_id, count(*) FROM job_transitions WHERE state = 'succeeded' "
                               "GROUP BY job_id").fetchall())
    assert trail == ["queued", "running", "queued", "running", "succeeded"]
    assert all(ends.get(j["id"]) == 1 for j in [doomed, *others]), ends  # every job ended exactly once
    # Its sounds are there once, readable from either server.
    assert b.get(f"{G}/{doomed['id']}/audio/0.wav").status_code == 200

    watcher.join(60)
    assert seen_on_b and seen_on_b[-1]["state"] == "succeeded"
    steps = {e["step"] for e in seen_on_b if e.get("type") == "job" and e["state"] == "running"}
    # Step by step: the database is re-read only every 5 s, far fewer than the ~100 progress events of a job.
    assert len(steps) >= 10, sorted(steps)


def test_cancel_through_either_server_reaches_the_worker(cluster: Cluster) -> None:
    a = httpx.Client(base_url=cluster.apis[0], timeout=30)
    b = httpx.Client(base_url=cluster.apis[1], timeout=30)
    job = a.post(G, json={"prompt": "endless hum", "duration": 30.0}).json()
    deadline = time.monotonic() + 120
    while cluster.row(job["id"])["progress_step"] < 1:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    assert b.post(f"{G}/{job['id']}/cancel").status_code == 200
    end = wait_final(a, job["id"], timeout=60)
    assert end["state"] == "cancelled" and end["step"] < end["total_steps"]
    # The worker is free again: the next job runs.
    after = b.post(G, json={"prompt": "after", "duration": 0.5}).json()
    assert wait_final(b, after["id"], timeout=120)["state"] == "succeeded"
    assert all(w.poll() is None for w in cluster.workers)
