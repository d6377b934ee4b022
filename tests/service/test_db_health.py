"""/readyz and the API when the database file is deleted or cannot be written (a real server, a real file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from svc_helpers import data_dir_of, start_server

from soundgen.service.settings import ServiceSettings

JOB = {"prompt": "rain on a tin roof", "duration": 0.5}


def test_a_deleted_database_is_not_ready_and_writes_get_503(tmp_path: Path) -> None:
    live = start_server(ServiceSettings.tiny(tmp_path / "svc"))
    try:
        with live.client() as c:
            assert c.post("/api/v1/generations", json=JOB).status_code == 201
            db = data_dir_of(live) / "soundgen.db"
            db.unlink()  # the server's connections keep the deleted file open: writes would vanish at restart
            r = c.get("/readyz")
            assert r.status_code == 503 and "was deleted or replaced" in r.json()["reason"]
            r = c.post("/api/v1/generations", json=JOB)
            assert r.status_code == 503 and "was deleted or replaced" in r.json()["error"] and r.headers["retry-after"]
            assert c.get("/api/v1/generations").status_code == 503
    finally:
        live.stop()


def test_a_read_only_database_is_not_ready(tmp_path: Path) -> None:
    live = start_server(ServiceSettings.tiny(tmp_path / "svc"))
    db = data_dir_of(live) / "soundgen.db"
    try:
        with live.client() as c:
            assert c.get("/readyz").status_code == 200
            db.chmod(0o444)
            if os.access(db, os.W_OK):
                pytest.skip("this process writes files whatever their permissions (root)")
            r = c.get("/readyz")
            assert r.status_code == 503 and "cannot be written" in r.json()["reason"], r.text
    finally:
        db.chmod(0o644)
        live.stop()
