"""Jobs survive a kill: a subprocess server is SIGKILLed mid-generation and restarted on the same data; the job
it was running goes back to the queue when its lease runs out (short here) and runs again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from svc_helpers import free_port, wait_final

G = "/api/v1/generations"


def spawn(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SOUNDGEN_TORCH_THREADS": "1", "SOUNDGEN_POLL_SECONDS": "0.2",
           "SOUNDGEN_PROGRESS_PERSIST_SECONDS": "0.05", "SOUNDGEN_LEASE_SECONDS": "10"}
    return subprocess.Popen([sys.executable, "-m", "soundgen", "-q", "serve", "--tiny-random-model", "--port",
                             str(port), "--data-dir", str(data)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server not ready in 90 s")


def test_queued_and_running_jobs_survive_sigkill(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = spawn(tmp_path, port)
    try:
        wait_ready(base, proc)
        c = httpx.Client(base_url=base, timeout=30)
        running = c.post(G, json={"prompt": "long drone", "duration": 10.0}).json()
        queued = [c.post(G, json={"prompt": f"short {i}", "duration": 0.05}).json() for i in range(3)]
        deadline = time.monotonic() + 30
        while c.get(f"{G}/{running['id']}").json()["step"] < 1:
            assert time.monotonic() < deadline, "the long job never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with sqlite3.connect(tmp_path / "soundgen.db") as db:
            states = dict(db.execute("SELECT id, state FROM jobs").fetchall())
        assert states[running["id"]] == "running" and {states[j["id"]] for j in queued} == {"queued"}

        proc = spawn(tmp_path, port)
        wait_ready(base, proc)
        for job in [running, *queued]:
            assert wait_final(c, job["id"], timeout=120)["state"] == "succeeded"
        assert c.get(f"{G}/{running['id']}").json()["attempts"] == 2
    finally:
        proc.kill()
        proc.wait(10)
    with sqlite3.connect(tmp_path / "soundgen.db") as db:
        trail = [s for (s,) in db.execute("SELECT state FROM job_transitions WHERE job_id = ? ORDER BY id",
                                          (running["id"],))]
        ends = db.execute("SELECT count(*) FROM job_transitions WHERE state = 'succeeded'").fetchone()[0]
    assert trail == ["queued", "running", "queued", "running", "succeeded"]
    assert ends == 4  # every job ended exactly once
