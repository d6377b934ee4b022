"""Load benchmark of `soundgen serve`: N concurrent clients submit and poll; no job lost, none duplicated.

Starts the real server as a subprocess (tiny random model, very short sounds, its own SQLite file), then
runs two phases of ``--submissions`` jobs each with ``--clients`` concurrent clients that submit a job (with an
``Idempotency-Key``), poll its status until it ends, and submit the next:

Each phase starts after ``--warmup`` unmeasured requests (a fresh process fills its caches on its first
requests; the restart in ``kill_restart`` is measured cold, as it happens).

* ``steady``: no interruption; measures submission and status latency (p50/p95/p99).
* ``kill_restart``: the server is SIGKILLed halfway through the submissions and restarted on the same data;
  clients retry with the same idempotency keys, as a real client would.

After each phase the job database is read directly: every submission must map to exactly one job (none lost,
none duplicated), every job must have succeeded, and have exactly one final state transition. The peer measured
in the same run is ``GET /healthz`` (a request that touches nothing) under the same load; the report gives the
ratio of submission latency to it. Each phase starts with all clients submitting at the same instant; that
burst is also reported on its own (``submit_ms_first_burst``) beside the submissions after it, and the
load average of the machine is recorded (other work on it takes CPU from the server).
Two modes run in turn, in the same run (``--modes``): ``embedded`` (the default server: the worker and the model
process inside it) and ``distributed`` (``SOUNDGEN_BROKER_URL``: the same server only records jobs and sends them
through a ``redis-server`` started here to ``--workers`` ``soundgen worker`` processes, which run the model). In the
distributed ``kill_restart`` phase the API server is killed and restarted while the workers go on. The report
gives each mode's phases and the distributed mode's throughput and submission p95 over the embedded mode's.

Writes JSON to ``benchmarks/results/service_load.json`` (or ``--out``).

    .venv/bin/python benchmarks/service_load.py --clients 50 --submissions 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "service"))
from redis_server import RedisServer, start_redis  # noqa: E402 - the test suite's throwaway redis-server

G = "/api/v1/generations"
FINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Phase:
    """Measurements of one phase."""

    name: str
    submit_ms: list[float] = field(default_factory=list)
    first_submit_ms: list[float] = field(default_factory=list)  # each client's first: all 50 at the same instant
    status_ms: list[float] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    jobs: dict[str, str] = field(default_factory=dict)  # idempotency key -> job id the client got
    retries: int = 0
    kills: int = 0
    client_cpu_s: float = 0.0


class Server:
    """The server subprocess, restartable on the same data directory and port."""

    def __init__(self, data: Path, port: int, broker_url: str | None = None) -> None:
        self.data, self.port = data, port
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "SOUNDGEN_TORCH_THREADS": "1", "SOUNDGEN_NO_PROGRESS": "1",
                    "SOUNDGEN_POLL_SECONDS": "0.2"}
        if broker_url:
            self.env["SOUNDGEN_BROKER_URL"] = broker_url
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_workers(self, n: int) -> None:
        """Start ``n`` ``soundgen worker`` processes on the same data and broker, and wait until each ran a job."""
        self.workers = [subprocess.Popen([sys.executable, "-m", "soundgen", "-q", "worker", "--tiny-random-model",
                                          "--data-dir", str(self.data)], env=self.env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL) for _ in range(n)]
        seen: set[str] = set()
        deadline = time.monotonic() + 300
        with httpx.Client(base_url=self.base, timeout=30) as c:
            while len(seen) < n:
                if time.monotonic() > deadline or any(w.poll() is not None for w in self.workers):
                    raise RuntimeError(f"the {n} workers did not all start in 300 s")
                ids = [c.post(G, json={"prompt": "probe", "duration": 0.02}).json()["id"] for _ in range(n)]
                for job_id in ids:
                    while c.get(f"{G}/{job_id}").json()["state"] not in FINAL:
                        time.sleep(0.05)
                with sqlite3.connect(self.data / "soundgen.db") as db:
                    seen |= {w for (w,) in db.execute("SELECT DISTINCT worker_id FROM jobs WHERE worker_id IS NOT "
                                                      "NULL")}

    def start(self) -> None:
        env = self.env
        self.proc = subprocess.Popen([sys.executable, "-m", "soundgen", "-q", "serve", "--tiny-random-model",
                                      "--port", str(self.port), "--data-dir", str(self.data)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not become ready in 120 s")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        for proc in [self.proc, *self.workers]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [self.proc, *self.workers]:
            if proc is not None:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


class Conn:
    """A minimal HTTP/1.1 keep-alive connection (a few microseconds per request, unlike a full client).

    On a 2-core machine a full-featured async client spends more CPU per request than the server does, and
    the latencies it reports are then mostly its own; this one only writes a request and reads
    ``Content-Length`` bytes back.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        """Open the connection now (else the first request opens it)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(data)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        for k, v in (headers or {}).items():
            head += f"{k}: {v}\r\n"
        try:
            self.writer.write(head.encode() + b"\r\n" + data)
            status_line = await self.reader.readuntil(b"\r\n")
            length = 0
            while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            payload = await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.close()
            raise
        return int(status_line.split()[1]), json.loads(payload) if payload else {}

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _request(conn: Conn, phase: Phase, method: str, path: str, **kw: Any) -> tuple[int, dict[str, Any],
                                                                                          float]:
    """Send until the server answers (it may be down for a restart); returns status, body and latency (ms)."""
    while True:
        t0 = time.perf_counter()
        try:
            status, body = await conn.request(method, path, **kw)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            phase.retries += 1
            await asyncio.sleep(0.2)
            continue
        if status >= 500:
            phase.retries += 1
            await asyncio.sleep(0.2)
            continue
        return status, body, (time.perf_counter() - t0) * 1000


async def _client(conn: Conn, phase: Phase, todo: asyncio.Queue[int], duration: float, poll: float) -> None:
    first = True
    try:
        while True:
            try:
                i = todo.get_nowait()
            except asyncio.QueueEmpty:
                return
            key = f"bench-{phase.name}-{i}-{uuid.uuid4().hex[:8]}"
            status, body, ms = await _request(conn, phase, "POST", G, headers={"Idempotency-Key": key},
                                              body={"prompt": f"load test sound {i}", "duration": duration,
                                                    "seed": i})
            if status != 201:
                raise RuntimeError(f"submission failed: {status} {body}")
            phase.submit_ms.append(ms)
            if first:
                phase.first_submit_ms.append(ms)
                first = False
            phase.jobs[key] = body["id"]
            while True:
                await asyncio.sleep(poll)
                _, job, ms = await _request(conn, phase, "GET", f"{G}/{body['id']}")
                phase.status_ms.append(ms)
                if job["state"] in FINAL:
                    break
    finally:
        conn.close()


async def _health(port: int, phase: Phase, stop: asyncio.Event) -> None:
    conn = Conn("127.0.0.1", port)
    while not stop.is_set():
        try:
            t0 = time.perf_counter()
            status, _ = await conn.request("GET", "/healthz")
            if status == 200:
                phase.health_ms.append((time.perf_counter() - t0) * 1000)
        except (OSError, asyncio.IncompleteReadError):
            pass
        await asyncio.sleep(0.05)
    conn.close()


async def _killer(server: Server, phase: Phase, at: int) -> None:
    while len(phase.jobs) < at:
        await asyncio.sleep(0.01)
    server.kill()
    phase.kills += 1
    await asyncio.to_thread(server.start)


async def warm_up(server: Server, n: int) -> None:
    """``n`` submissions and reads, not measured: a fresh process builds caches on its first requests."""
    conn = Conn("127.0.0.1", server.port)
    scratch = Phase("warmup")
    for i in range(n):
        _, body, _ = await _request(conn, scratch, "POST", G, body={"prompt": f"warm up {i}", "duration": 0.02})
        await _request(conn, scratch, "GET", f"{G}/{body['id']}")
        await _request(conn, scratch, "GET", f"{G}?limit=5")
    conn.close()


async def run_phase(server: Server, name: str, args: argparse.Namespace, kill: bool) -> tuple[Phase, float]:
    """Run one phase; returns its measurements and wall seconds."""
    await warm_up(server, args.warmup)
    phase = Phase(name)
    todo: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.submissions):
        todo.put_nowait(i)
    stop = asyncio.Event()
    # Keep-alive clients connect once: open every connection before the clock starts, so that the first
    # submissions measure the service, not 50 TCP handshakes at once (reconnects after the kill are measured).
    conns = [Conn("127.0.0.1", server.port) for _ in range(args.clients)]
    await asyncio.gather(*[c.connect() for c in conns])
    t0, cpu0 = time.perf_counter(), time.process_time()
    health = asyncio.create_task(_health(server.port, phase, stop))
    killer = asyncio.create_task(_killer(server, phase, args.submissions // 2)) if kill else None
    await asyncio.gather(*[_client(conn, phase, todo, args.duration, args.poll) for conn in conns])
    if killer is not None:
        await killer
    stop.set()
    await health
    phase.client_cpu_s = time.process_time() - cpu0
    return phase, time.perf_counter() - t0


def audit(db_path: Path, phase: Phase) -> dict[str, Any]:
    """Compare what clients were told with the database: lost, duplicated, not ended once."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT id, idempotency_key, state FROM jobs WHERE idempotency_key LIKE ?",
                          (f"bench-{phase.name}-%",)).fetchall()
        ends = dict(db.execute("SELECT job_id, count(*) FROM job_transitions WHERE state IN "
                               "('succeeded','failed','cancelled') GROUP BY job_id").fetchall())
    by_key: dict[str, list[str]] = {}
    for job_id, key, _ in rows:
        by_key.setdefault(key, []).append(job_id)
    states = {job_id: state for job_id, _, state in rows}
    lost = [k for k, j in phase.jobs.items() if by_key.get(k) != [j]]
    return {
        "submissions": len(phase.jobs), "jobs_in_db": len(rows),
        "lost": len(lost), "duplicated": sum(len(v) - 1 for v in by_key.values()),
        "not_succeeded": sum(1 for s in states.values() if s != "succeeded"),
        "ended_not_exactly_once": sum(1 for j in states if ends.get(j, 0) != 1),
    }


def pct(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` in ms, rounded; None when empty."""
    if not values:
        return None
    xs = sorted(values)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 2)


def summary(phase: Phase, wall: float, checks: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready figures of one phase."""
    sub95, health95 = pct(phase.submit_ms, 0.95), pct(phase.health_ms, 0.95)
    later = list(phase.submit_ms)
    for ms in phase.first_submit_ms:
        later.remove(ms)
    return {
        "wall_s": round(wall, 2), "jobs_per_s": round(len(phase.jobs) / wall, 2), "retries": phase.retries,
        "kills": phase.kills, "client_cpu_s": round(phase.client_cpu_s, 2),
        "submit_ms": {"p50": pct(phase.submit_ms, 0.5), "p95": sub95, "p99": pct(phase.submit_ms, 0.99),
                      "mean": round(statistics.fmean(phase.submit_ms), 2) if phase.submit_ms else None},
        # The phase starts with every client submitting at once: that burst apart, and the rest (steady state).
        "submit_ms_first_burst": {"p50": pct(phase.first_submit_ms, 0.5), "max": pct(phase.first_submit_ms, 1.0),
                                  "n": len(phase.first_submit_ms)},
        "submit_ms_after_burst": {"p50": pct(later, 0.5), "p95": pct(later, 0.95), "n": len(later)},
        "status_ms": {"p50": pct(phase.status_ms, 0.5), "p95": pct(phase.status_ms, 0.95), "n": len(phase.status_ms)},
        "peer_healthz_ms": {"p50": pct(phase.health_ms, 0.5), "p95": health95, "n": len(phase.health_ms)},
        "submit_p95_over_healthz_p95": round(sub95 / health95, 2) if sub95 and health95 else None,
        "audit": checks,
    }


def run_mode(mode: str, args: argparse.Namespace, redis: RedisServer | None) -> dict[str, Any]:
    """Every phase of one mode on a fresh data directory; the summaries by phase."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix=f"soundgen-bench-{mode}-") as tmp:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = Server(Path(tmp), port, redis.url if redis is not None else None)
        try:
            server.start()
            if redis is not None:
                server.start_workers(args.workers)
            for name in args.phases.split(","):
                phase, wall = asyncio.run(run_phase(server, name, args, kill=name == "kill_restart"))
                results[name] = summary(phase, wall, audit(Path(tmp) / "soundgen.db", phase))
                print(f"{mode} {name}: {json.dumps(results[name])}", file=sys.stderr)
        finally:
            server.stop()
    return results


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def main() -> int:
    """Run the benchmark and write the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--submissions", type=int, default=1000, help="jobs per phase")
    ap.add_argument("--duration", type=float, default=0.02, help="seconds of audio per job")
    ap.add_argument("--poll", type=float, default=0.25, help="seconds between status polls of a client")
    ap.add_argument("--phases", default="steady,kill_restart")
    ap.add_argument("--modes", default="embedded,distributed",
                    help="embedded (worker in the server) and/or distributed (Celery on Redis, --workers workers)")
    ap.add_argument("--workers", type=int, default=2, help="soundgen worker processes of the distributed mode")
    ap.add_argument("--warmup", type=int, default=20, help="unmeasured submissions before each phase")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "service_load.json")
    args = ap.parse_args()
    modes = args.modes.split(",")
    redis = start_redis() if "distributed" in modes else None
    try:
        by_mode = {mode: run_mode(mode, args, redis if mode == "distributed" else None) for mode in modes}
    finally:
        if redis is not None:
            redis.stop()
    results = by_mode.get("embedded", {})
    steady = results.get("steady", {})
    killed = results.get("kill_restart", {})
    dist = by_mode.get("distributed", {})
    report = {
        "benchmark": "service_load", "cpu_count": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),  # other work on the machine shares its cores
        "config": {k: str(v) for k, v in vars(args).items()}, "phases": results, "distributed": dist,
        # Distributed over embedded, phase by phase: throughput and submission p95.
        "distributed_over_embedded": {
            name: {"jobs_per_s": _ratio(dist[name]["jobs_per_s"], results[name]["jobs_per_s"]),
                   "submit_p95": _ratio(dist[name]["submit_ms"]["p95"], results[name]["submit_ms"]["p95"])}
            for name in dist if name in results},
        "targets": {
            "submit_p95_below_50ms": (steady.get("submit_ms", {}).get("p95") or 1e9) < 50 if steady else None,
            "no_lost_or_duplicated_with_kill": (killed["audit"]["lost"] == 0 and killed["audit"]["duplicated"] == 0
                                                and killed["audit"]["ended_not_exactly_once"] == 0)
            if killed else None,
            "distributed_no_lost_duplicated_or_unfinished": all(
                p["audit"]["lost"] == 0 and p["audit"]["duplicated"] == 0 and p["audit"]["not_succeeded"] == 0
                and p["audit"]["ended_not_exactly_once"] == 0 for p in dist.values()) if dist else None,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"targets": report["targets"], "distributed_over_embedded": report["distributed_over_embedded"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
