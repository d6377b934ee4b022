"""Limits that must hold under concurrency and over time: the quota, a revoked key's socket, /metrics, missing
result files (real servers on loopback, real keys, real files)."""

from __future__ import annotations

import contextlib
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from svc_helpers import LiveServer, data_dir_of, start_server, wait_final

from soundgen.cli.main import main
from soundgen.service.routes import events
from soundgen.service.settings import ServiceSettings

G = "/api/v1/generations"


def new_key(data: Path, name: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["keys", "create", "--name", name, "--data-dir", str(data)]) == 0
    match = re.search(r"^(sg_\S+)$", buf.getvalue(), re.M)
    assert match
    return match.group(1)


@pytest.fixture
def keyed(tmp_path: Path) -> tuple[LiveServer, str]:
    data = tmp_path / "svc"
    key = new_key(data, "alice")
    settings = ServiceSettings.tiny(data).model_copy(update={
        "require_auth": True, "rate_limit_per_minute": 0.0, "max_active_jobs_per_key": 3, "max_duration": 300.0})
    live = start_server(settings)
    yield live, key  # type: ignore[misc]
    live.stop()


def test_concurrent_submissions_cannot_pass_the_quota(keyed: tuple[LiveServer, str]) -> None:
    live, key = keyed

    def submit(_: int) -> int:
        with live.client(key) as c:
            return c.post(G, json={"prompt": "a long drone", "duration": 300.0}).status_code

    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(submit, range(10)))
    assert sorted(codes) == [201] * 3 + [429] * 7
    with live.client(key) as c:
        for job in c.get(G).json()["items"]:
            c.post(f"{G}/{job['id']}/cancel")


def test_metrics_need_a_key_where_the_api_does(keyed: tuple[LiveServer, str], server: LiveServer) -> None:
    live, key = keyed
    assert live.client().get("/metrics").status_code == 401
    assert live.client(key).get("/metrics").status_code == 200
    assert server.client().get("/metrics").status_code == 200  # loopback without auth: no key needed


def test_a_revoked_keys_websocket_is_closed(keyed: tuple[LiveServer, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    monkeypatch.setattr(events, "RESYNC_SECONDS", 0.3)  # how often an open socket's key is checked again
    live, _ = keyed
    data = Path(live.settings.data_dir)
    key = new_key(data, "temp")
    with connect(live.ws_url + "/api/v1/events", subprotocols=["bearer", key],  # type: ignore[list-item]
                 open_timeout=10) as ws:
        assert '"hello"' in str(ws.recv(timeout=10))
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["keys", "revoke", key.split("_")[1], "--data-dir", str(data)]) == 0
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() - started < 10:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert time.monotonic() - started < 5


def test_a_result_file_missing_from_storage_is_404(server: LiveServer) -> None:
    with server.client() as c:
        job = c.post(G, json={"prompt": "a click", "duration": 0.2}).json()
        assert wait_final(c, job["id"])["state"] == "succeeded"
        folder = data_dir_of(server) / "storage" / "jobs" / job["id"]
        for f in folder.iterdir():
            f.unlink()
        for url in (f"{G}/{job['id']}/audio/0.wav", f"{G}/{job['id']}/audio/0.mp3", f"{G}/{job['id']}/image/0.png"):
            r = c.get(url)
            assert r.status_code == 404 and "missing from storage" in r.json()["error"], (url, r.text)
