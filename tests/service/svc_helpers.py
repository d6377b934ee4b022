"""Helpers of the service tests: real servers on loopback (uvicorn in a thread), real SQLite files and
PostgreSQL databases."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from soundgen.service.app import create_app
from soundgen.service.settings import ServiceSettings

_MODEL: list[Any] = []
DATABASES = ["sqlite", "postgresql"]  # the job-store and API tests run on each
SCREENSHOT_DIRS: set[Path] = set()  # where the browser tests saved screenshots (listed at the end of the run)


def tiny_generator() -> Any:
    """The tiny random pipeline, loaded once per test session (each server reuses it)."""
    if not _MODEL:
        from soundgen.pipeline import TextToSound

        _MODEL.append(TextToSound.tiny_random())
    return _MODEL[0].generate


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A running server: its address, settings, and a stop function."""

    base_url: str
    settings: ServiceSettings
    stop: Callable[[], None]
    app: Any

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client for this server (with a bearer key when given)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    @property
    def ws_url(self) -> str:
        """The ``ws://`` base address."""
        return self.base_url.replace("http://", "ws://")


def start_server(settings: ServiceSettings, load_generator: Callable[[], Any] | None = tiny_generator,
                 wait_ready: bool = True) -> LiveServer:
    """Start uvicorn in a thread on a free loopback port and wait until it answers (and is ready)."""
    port = free_port()
    settings = settings.model_copy(update={"port": port})
    app = create_app(settings, load_generator)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws="websockets-sansio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            r = httpx.get(base + ("/readyz" if wait_ready else "/healthz"), timeout=2)
            if r.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    else:
        raise RuntimeError("the test server did not become ready in 60 s")

    def stop() -> None:
        server.should_exit = True
        thread.join(30)

    return LiveServer(base, settings, stop, app)


def wait_final(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll a job until it is succeeded, failed or cancelled; returns its last state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v1/generations/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end in {timeout} s")


def ws_messages(url: str, *, subprotocols: list[str] | None = None, limit: int = 100000,
                timeout: float = 60) -> list[dict[str, Any]]:
    """Every message of a WebSocket until the server closes it (or ``limit`` messages)."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    out: list[dict[str, Any]] = []
    with connect(url, subprotocols=subprotocols, open_timeout=10) as ws:  # type: ignore[arg-type]
        deadline = time.monotonic() + timeout
        try:
            while len(out) < limit and time.monotonic() < deadline:
                out.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
        except ConnectionClosed:
            pass
    return out


def data_dir_of(live: LiveServer) -> Path:
    """The data directory of a server."""
    return Path(live.settings.data_dir)


def database_url(request: pytest.FixtureRequest, kind: str, tmp: Path) -> str:
    """A fresh, empty database of ``kind``: a SQLite file in ``tmp``, or a new database on the session's
    PostgreSQL server (the ``postgres`` fixture, which skips the test where no server can start)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'jobs.db'}"
    return str(request.getfixturevalue("postgres").new_database())


def api_settings(data_dir: Path, db: str | None = None) -> ServiceSettings:
    """Tiny settings with long limits: tests that cancel a running job ask for minutes of audio, so that the job
    is surely still running whatever the speed of the tiny model."""
    return ServiceSettings.tiny(data_dir).model_copy(update={"max_duration": 300.0, "database_url": db})


def spawn_soundgen(
    args: list[str], env: dict[str, str], log: Path, *, verbose: bool = False
) -> subprocess.Popen[bytes]:
    """``python -m soundgen ARGS --tiny-random-model`` as a real process, its output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "soundgen", *(["-v"] if verbose else []), *args,
                                 "--tiny-random-model"], env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_process_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    """Poll ``base``/readyz until it answers 200; fail with the end of ``log`` if the process dies or is late."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} not ready in {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process still running, then wait for each (SIGKILL after 30 s)."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
