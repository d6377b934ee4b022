"""Auth and limits: keys from the CLI, bearer tokens, isolation between keys, 429 with Retry-After."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from svc_helpers import LiveServer, start_server, wait_final
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from soundgen.cli.main import main
from soundgen.service.settings import ServiceSettings

G = "/api/v1/generations"


def make_key(data_dir: Path, name: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["keys", "create", "--name", name, "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    match = re.search(r"^(sg_\S+)$", out, re.M)
    assert match, out
    return match.group(1)


@pytest.fixture(scope="module")
def keys_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    data = tmp_path_factory.mktemp("auth")
    import contextlib
    import io

    keys = {}
    for name in ("alice", "bob", "carol"):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["keys", "create", "--name", name, "--data-dir", str(data)]) == 0
        keys[name] = re.search(r"^(sg_\S+)$", buf.getvalue(), re.M).group(1)  # type: ignore[union-attr]
    settings = ServiceSettings.tiny(data).model_copy(update={
        "require_auth": True, "rate_limit_per_minute": 60.0, "rate_limit_burst": 3, "max_active_jobs_per_key": 2,
        "max_duration": 300.0})
    live = start_server(settings)
    yield live, keys
    live.stop()


def test_no_key_and_wrong_key_are_refused(keys_server: tuple[LiveServer, dict[str, str]]) -> None:
    live, keys = keys_server
    r = live.client().get(G)
    assert r.status_code == 401 and "soundgen keys create" in r.json()["error"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    forged = keys["alice"][:-4] + "AAAA"
    for bad in (forged, "sg_nothing_here", "hello"):
        r = live.client(bad).get(G)
        assert r.status_code == 401 and "not valid" in r.json()["error"]
    assert live.client().get("/api/v1/info").json()["auth_required"] is True
    assert live.client().get("/healthz").status_code == 200


def test_each_key_sees_only_its_own_jobs(keys_server: tuple[LiveServer, dict[str, str]]) -> None:
    live, keys = keys_server
    alice, bob = live.client(keys["alice"]), live.client(keys["bob"])
    job = alice.post(G, json={"prompt": "secret sound", "duration": 0.05}).json()
    done = wait_final(alice, job["id"])
    assert done["state"] == "succeeded"
    assert bob.get(f"{G}/{job['id']}").status_code == 404
    assert bob.get(done["results"][0]["audio_url"]).status_code == 404
    assert bob.post(f"{G}/{job['id']}/cancel").status_code == 404
    assert bob.delete(f"{G}/{job['id']}").status_code == 404
    assert job["id"] not in [j["id"] for j in bob.get(G).json()["items"]]
    assert job["id"] in [j["id"] for j in alice.get(G).json()["items"]]
    # WebSocket: the key goes in the subprotocol (what browsers can send); another key's job is not found.
    url = f"{live.ws_url}{G}/{job['id']}/events"
    with connect(url, subprotocols=["bearer", keys["alice"]]) as ws:  # type: ignore[list-item]
        assert json.loads(ws.recv(timeout=5))["state"] == "succeeded"
    with connect(url, subprotocols=["bearer", keys["bob"]]) as ws:  # type: ignore[list-item]
        assert json.loads(ws.recv(timeout=5))["type"] == "error"
    with pytest.raises(InvalidStatus):
        connect(url, open_timeout=5)


def test_rate_limit_and_quota_answer_429_with_retry_after(keys_server: tuple[LiveServer, dict[str, str]]) -> None:
    live, keys = keys_server
    carol = live.client(keys["carol"])
    first = [carol.post(G, json={"prompt": f"long {i}", "duration": 240.0}) for i in range(2)]
    assert [r.status_code for r in first] == [201, 201]
    quota = carol.post(G, json={"prompt": "third", "duration": 0.05})
    assert quota.status_code == 429 and "jobs queued or running" in quota.json()["error"]
    assert int(quota.headers["retry-after"]) > 0
    rate = carol.post(G, json={"prompt": "fourth", "duration": 0.05})
    assert rate.status_code == 429 and "too many requests" in rate.json()["error"]
    assert int(rate.headers["retry-after"]) >= 1
    for r in first:
        carol.post(f"{G}/{r.json()['id']}/cancel")
    for r in first:
        assert wait_final(carol, r.json()["id"])["state"] == "cancelled"


def test_revoked_key_stops_working(keys_server: tuple[LiveServer, dict[str, str]],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    live, _ = keys_server
    data = str(live.settings.data_dir)
    key = make_key(Path(data), "temp", capsys)
    assert live.client(key).get(G).status_code == 200
    key_id = key.split("_")[1]
    assert main(["keys", "list", "--data-dir", data]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "temp" in listing and key not in listing  # the secret is never shown again
    assert main(["keys", "revoke", key_id, "--data-dir", data]) == 0
    capsys.readouterr()
    assert live.client(key).get(G).status_code == 401
    assert main(["keys", "revoke", key_id, "--data-dir", data]) == 2
    assert "no active key" in capsys.readouterr().err

