"""Cross-site requests, rebound host names, malformed and oversized bodies, on a real server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from svc_helpers import LiveServer, start_server

from soundgen.service.settings import ServiceSettings

EVIL = "http://evil.example"
JOB = {"prompt": "rain on a tin roof", "duration": 0.5}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = ServiceSettings.tiny(tmp_path_factory.mktemp("guard")).model_copy(
        update={"allowed_hosts": ["sound.lan"], "cors_origins": ["http://app.example"], "max_body_bytes": 4096})
    live = start_server(settings)
    yield live
    live.stop()


def own_origin(live: LiveServer) -> str:
    return live.base_url


def test_a_cross_site_text_plain_post_is_refused(server: LiveServer) -> None:
    with server.client() as c:
        r = c.post("/api/v1/generations", content=b'{"prompt": "rain", "duration": 0.5}',
                   headers={"content-type": "text/plain", "origin": EVIL})
        assert r.status_code == 403 and "cross-site" in r.json()["error"]
        r = c.post("/api/v1/generations", content=b'{"prompt": "rain", "duration": 0.5}',
                   headers={"content-type": "text/plain"})
        assert r.status_code == 415 and "application/json" in r.json()["error"]
        r = c.post("/api/v1/generations", json=JOB, headers={"sec-fetch-site": "cross-site"})
        assert r.status_code == 403


def test_the_pages_own_requests_pass(server: LiveServer) -> None:
    with server.client() as c:
        r = c.post("/api/v1/generations", json=JOB, headers={"origin": own_origin(server),
                                                             "sec-fetch-site": "same-origin"})
        assert r.status_code == 201, r.text
        job = r.json()["id"]
        # Cancel and delete carry no body, so no content type: the page sends them like this.
        assert c.post(f"/api/v1/generations/{job}/cancel", headers={"origin": EVIL}).status_code == 403
        r = c.post(f"/api/v1/generations/{job}/cancel", headers={"origin": own_origin(server)})
        assert r.status_code in (200, 409)
        assert c.delete(f"/api/v1/generations/{job}", headers={"origin": EVIL}).status_code == 403
        assert c.delete(f"/api/v1/generations/{job}", headers={"origin": own_origin(server)}).status_code == 204


def test_a_rebound_host_name_is_refused(server: LiveServer, guarded: LiveServer) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    with server.client() as c:
        r = c.get("/api/v1/generations", headers={"host": f"evil.example:{port}"})
        assert r.status_code == 421 and "SOUNDGEN_ALLOWED_HOSTS" in r.json()["error"]
        assert c.get("/api/v1/generations", headers={"host": f"localhost:{port}"}).status_code == 200
        assert c.get("/healthz", headers={"host": "[::1]"}).status_code == 200
    with guarded.client() as c:
        assert c.get("/api/v1/generations", headers={"host": "sound.lan"}).status_code == 200
        assert c.get("/api/v1/generations", headers={"host": "other.lan"}).status_code == 421


def test_a_cross_site_websocket_is_refused(server: LiveServer) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus), connect(server.ws_url + "/api/v1/events", origin=EVIL, open_timeout=10):  # type: ignore[arg-type]
        pass
    with connect(server.ws_url + "/api/v1/events", origin=own_origin(server), open_timeout=10) as ws:  # type: ignore[arg-type]
        assert '"hello"' in str(ws.recv(timeout=10))


@pytest.mark.parametrize("body", [
    b'{"prompt": "rain", "duration": NaN}', b'{"prompt": "rain", "duration": Infinity}',
    b'{"prompt": "rain", "duration": 1e999}', b'{"prompt": "rain", "cfg_coef": -Infinity}',
    b'{"prompt": "\xff\xfe rain"}', b"\xff\xfe\xfd",
])
def test_malformed_bodies_get_422_not_500(server: LiveServer, body: bytes) -> None:
    with server.client() as c:
        r = c.post("/api/v1/generations", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]


def test_an_oversized_body_gets_413_by_length_and_by_count(guarded: LiveServer) -> None:
    big = b'{"prompt": "' + b"a" * 8192 + b'"}'
    with guarded.client() as c:
        r = c.post("/api/v1/generations", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "4096-byte limit" in r.json()["error"]
        # Chunked, with no Content-Length: refused once the limit is passed.
        r = c.post("/api/v1/generations", content=iter([big[:3000], big[3000:]]),
                   headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.post("/api/v1/generations", json=JOB).status_code == 201


def test_cors_answers_only_for_named_origins(server: LiveServer, guarded: LiveServer) -> None:
    preflight = {"origin": "http://app.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type"}
    with guarded.client() as c:
        r = c.options("/api/v1/generations", headers=preflight)
        assert r.headers.get("access-control-allow-origin") == "http://app.example"
        r = c.post("/api/v1/generations", json=JOB, headers={"origin": "http://app.example"})
        assert r.status_code == 201 and r.headers["access-control-allow-origin"] == "http://app.example"
        r = c.options("/api/v1/generations", headers={**preflight, "origin": EVIL})
        assert "access-control-allow-origin" not in r.headers
    with server.client() as c:
        r = c.options("/api/v1/generations", headers=preflight)
        assert "access-control-allow-origin" not in r.headers


def test_host_and_origin_lists_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOUNDGEN_ALLOWED_HOSTS", "sound.lan, box.local")
    monkeypatch.setenv("SOUNDGEN_CORS_ORIGINS", "http://app.example")
    s = ServiceSettings(data_dir=tmp_path)
    assert s.allowed_hosts == ["sound.lan", "box.local"] and s.cors_origins == ["http://app.example"]
    assert s.max_body_bytes == 1 << 20


def test_plain_http_clients_without_browser_headers_still_work(server: LiveServer) -> None:
    r = httpx.post(server.base_url + "/api/v1/generations", json=JOB, timeout=30)
    assert r.status_code == 201


def test_the_openapi_spec_names_the_answers_media_types_and_limits(server: LiveServer) -> None:
    spec = server.client().get("/openapi.json").json()
    paths = spec["paths"]
    create = paths["/api/v1/generations"]["post"]["responses"]
    assert {"201", "400", "403", "413", "415", "421", "422", "429", "503"} <= set(create)
    assert "409" in paths["/api/v1/generations/{job_id}/cancel"]["post"]["responses"]
    audio = paths["/api/v1/generations/{job_id}/audio/{index}.{fmt}"]["get"]["responses"]
    assert {"audio/mpeg", "audio/wav", "audio/flac", "audio/ogg"} <= set(audio["200"]["content"])
    assert "application/json" not in audio["200"]["content"] and "409" in audio
    text = spec["info"]["description"]
    assert f"{server.settings.max_prompt_chars} characters" in text and f"{1 << 20} bytes" in text
