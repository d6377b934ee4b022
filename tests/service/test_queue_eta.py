"""Queue position and time to finish (issue 17): from measured speed, in GET answers and running events, and
kept over a restart (the speed of the jobs done before is read back from the database)."""

from __future__ import annotations

import time
from pathlib import Path

from svc_helpers import api_settings, start_server, wait_final, ws_messages

from soundgen.service import eta, jobs
from soundgen.service.db import Database, migrate
from soundgen.service.schemas import GenerationCreate

G = "/api/v1/generations"


def test_speed_starts_from_a_guess_then_averages_what_was_measured(tmp_path: Path) -> None:
    speed = eta.GenerationSpeed(first_guess=2.0, weight=0.5)
    assert not speed.measured and speed.estimate(3.0) == 6.0
    speed.observe(1.0, 4.0)  # the first measurement replaces the guess
    assert speed.measured and speed.value == 0.25
    speed.observe(3.0, 4.0)
    assert speed.value == 0.5
    speed.observe(0.0, 0.0)  # nothing measured: no change
    assert speed.value == 0.5

    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    migrate(db.engine)
    fresh = eta.GenerationSpeed(first_guess=2.0)
    fresh.seed(db)  # an empty history keeps the guess
    assert not fresh.measured and fresh.value == 2.0
    for elapsed in (1.0, 2.0, 9.0):  # 4 s of audio each (2 sounds of 2 s)
        job = jobs.create_job(db, "local", GenerationCreate(prompt="p", duration=2.0, count=2))
        claimed = jobs.claim_next(db, "w")
        assert claimed is not None and claimed.id == job.id
        jobs.finish_job(db, claimed, "succeeded", elapsed=elapsed, result_duration=2.0, result_count=2)
    fresh.seed(db)
    assert fresh.measured and fresh.value == 0.5  # the median, not thrown off by the slow one
    db.dispose()


def test_a_running_job_is_timed_by_its_own_pace() -> None:
    speed = eta.GenerationSpeed(first_guess=1.0)
    now = 1000.0
    started = {"duration": 10.0, "count": 1, "started_at": now - 2.0, "progress_step": 0, "progress_total": 0}
    assert eta.remaining(started, speed, now) == 8.0  # no step yet: the estimate less the time spent
    halfway = {**started, "progress_step": 50, "progress_total": 100}
    assert eta.remaining(halfway, speed, now) == 2.0  # half done in 2 s: 2 s to go
    late = {**started, "started_at": now - 30.0}
    assert eta.remaining(late, speed, now) == 0.0


def test_queued_jobs_know_their_place_and_running_ones_their_end(tmp_path: Path) -> None:
    live = start_server(api_settings(tmp_path))
    try:
        c = live.client()
        quick = c.post(G, json={"prompt": "a measured one", "duration": 1.0}).json()
        assert wait_final(c, quick["id"])["state"] == "succeeded"
        assert live.app.state.service.worker.speed.measured
        blocker = c.post(G, json={"prompt": "a long hum", "duration": 300.0}).json()
        # enough audio that each job's own share of the wait shows at the 0.1 s the estimates are rounded to
        second = c.post(G, json={"prompt": "next", "duration": 10.0, "count": 2}).json()
        third = c.post(G, json={"prompt": "after that", "duration": 10.0}).json()
        assert second["queue_position"] is None  # the POST answer: the client asks with GET
        deadline = time.monotonic() + 30
        while c.get(f"{G}/{blocker['id']}").json()["step"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        run, two, three = (c.get(f"{G}/{j['id']}").json() for j in (blocker, second, third))
        assert run["state"] == "running" and run["queue_position"] is None and run["eta_seconds"] > 0
        assert (two["state"], two["queue_position"], three["queue_position"]) == ("queued", 1, 2)
        listed = {j["id"]: j for j in c.get(G).json()["items"]}  # one instant: the running job's end not moved on
        etas = [listed[j["id"]]["eta_seconds"] for j in (blocker, second, third)]
        assert etas[0] < etas[1] < etas[2]
        assert listed[third["id"]]["queue_position"] == 2 and listed[third["id"]]["eta_seconds"] > 0
        assert listed[quick["id"]]["eta_seconds"] is None and listed[quick["id"]]["queue_position"] is None
        events = ws_messages(f"{live.ws_url}{G}/{blocker['id']}/events", limit=4, timeout=10)[1:]  # after the snapshot
        running = [e for e in events if e.get("type") == "job" and e["state"] == "running"]
        assert running and all(e["eta_seconds"] is not None for e in running)
        assert c.post(f"{G}/{blocker['id']}/cancel").status_code == 200
        assert wait_final(c, third["id"])["state"] == "succeeded"
        assert c.get(f"{G}/{third['id']}").json()["eta_seconds"] is None
        measured = live.app.state.service.worker.speed.value
    finally:
        live.stop()
    again = start_server(api_settings(tmp_path))  # the same database: the speed is read back
    try:
        speed = again.app.state.service.worker.speed
        assert speed.measured and 0.2 * measured < speed.value < 5 * measured
    finally:
        again.stop()
