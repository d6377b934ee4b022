"""Issue 17: a generation's negative prompt is accepted, checked like a prompt at submission, stored with the job,
shown in its history, kept by variations and handed to the model (real servers on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from svc_helpers import LiveServer, api_settings, start_server, tiny_generator, wait_final

G = "/api/v1/generations"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, list[Any]]]:
    """A server whose model is the tiny pipeline, with every request it is given kept."""
    seen: list[Any] = []

    def load() -> Any:
        generate = tiny_generator()

        def run(request: Any, progress: Any = None, should_cancel: Any = None) -> Any:
            seen.append(request)
            return generate(request, progress=progress, should_cancel=should_cancel)

        return run

    live = start_server(api_settings(tmp_path_factory.mktemp("neg")), load_generator=load)
    yield live, seen
    live.stop()


def test_a_negative_prompt_is_stored_shown_and_used(recording: tuple[LiveServer, list[Any]]) -> None:
    server, seen = recording
    c = server.client()
    r = c.post(G, json={"prompt": "rain on a roof", "negative_prompt": "  music, voices ", "duration": 0.05, "seed": 3})
    assert r.status_code == 201 and r.json()["negative_prompt"] == "music, voices"
    job = wait_final(c, r.json()["id"])
    assert job["state"] == "succeeded" and job["negative_prompt"] == "music, voices"
    assert [q.negative_prompt for q in seen if q.prompt == "rain on a roof"] == ["music, voices"]
    listed = {j["id"]: j for j in c.get(G).json()["items"]}
    assert listed[job["id"]]["negative_prompt"] == "music, voices"  # the history shows it

    variation = wait_final(c, c.post(f"{G}/{job['id']}/variations").json()["id"])
    assert variation["negative_prompt"] == "music, voices" and variation["seed"] != 3

    for body in ({}, {"negative_prompt": None}, {"negative_prompt": "   "}):
        plain = c.post(G, json={"prompt": "wind", "duration": 0.05, **body})
        assert plain.status_code == 201 and plain.json()["negative_prompt"] is None, body
    assert "negative_prompt" not in c.get("/api/v1/info").json()["settings"]  # the numeric settings only


def test_a_batch_shares_its_negative_prompt(recording: tuple[LiveServer, list[Any]]) -> None:
    server, _ = recording
    c = server.client()
    r = c.post(f"{G}/batch", json={"prompts": ["a bell", "a drum"], "negative_prompt": "hiss", "duration": 0.05})
    assert r.status_code == 201 and [j["negative_prompt"] for j in r.json()["items"]] == ["hiss", "hiss"]


def test_an_overlong_negative_prompt_is_refused_at_submission(recording: tuple[LiveServer, list[Any]]) -> None:
    server, _ = recording
    c = server.client()
    info = c.get("/api/v1/info").json()
    limit = info["max_prompt_tokens"]
    before = len(c.get(G, params={"limit": 100}).json()["items"])
    over = " ".join(["wind"] * (limit + 1))  # the prompt's own limit: fine in characters, too many tokens
    r = c.post(G, json={"prompt": "rain", "negative_prompt": over, "duration": 0.05})
    assert r.status_code == 422
    assert r.json()["error"] == (f"negative_prompt: the negative prompt is {limit + 1} tokens long; the limit is "
                                 f"{limit} tokens: shorten it")
    r = c.post(G, json={"prompt": "rain", "negative_prompt": "x" * (info["max_prompt_chars"] + 1)})
    assert r.status_code == 422 and "negative_prompt:" in r.json()["error"] and "characters" in r.json()["error"]
    r = c.post(f"{G}/batch", json={"prompts": ["a", "b"], "negative_prompt": over})
    assert r.status_code == 422 and r.json()["error"].count("negative_prompt") == 1 and r.json()["lines"] == []
    at_limit = c.post(G, json={"prompt": "rain", "negative_prompt": " ".join(["wind"] * limit), "duration": 0.05})
    assert at_limit.status_code == 201 and wait_final(c, at_limit.json()["id"])["state"] == "succeeded"
    assert len(c.get(G, params={"limit": 100}).json()["items"]) == before + 1  # none of the refused was queued


def test_an_old_database_gains_the_column(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, inspect, text

    from soundgen.service.db import MIGRATIONS_DIR, migrate

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text("INSERT INTO jobs (id, owner, state, prompt, duration, count, seed, cfg_coef, temperature, "
                          "top_k, top_p, created_at, updated_at) VALUES ('j1', 'o', 'succeeded', 'old', 1, 1, 0, 3, "
                          "1, 250, 0, 0, 0)"))
    migrate(engine)
    assert "negative_prompt" in {c["name"] for c in inspect(engine).get_columns("jobs")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT prompt, negative_prompt FROM jobs")).all() == [("old", None)]
