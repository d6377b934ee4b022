"""Parts of the service on their own: atomic claims under concurrency, storage keys, pictures, the model
process (progress, cancel, errors, a crash)."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from soundgen.errors import CancelledError, InvalidRequestError
from soundgen.service import jobs
from soundgen.service.db import Database, migrate
from soundgen.service.genproc import GeneratorCrashed, ModelSpec, ProcessGenerator
from soundgen.service.models import Job
from soundgen.service.render import render_sound
from soundgen.service.schemas import GenerationCreate, JobOut
from soundgen.service.storage import LocalStorage, check_key, result_key


def test_concurrent_claims_take_each_job_exactly_once(db_url: str) -> None:
    db = Database(db_url)
    migrate(db.engine)
    created = {jobs.create_job(db, "local", GenerationCreate(prompt=f"p{i}")).id for i in range(60)}
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        other = Database(db_url)  # a separate engine, like another process
        while (job := jobs.claim_next(other, name)) is not None:
            with lock:
                claimed.append(job.id)
            assert jobs.finish_job(other, job, "succeeded")
            assert not jobs.finish_job(other, job, "succeeded")  # a second finish is refused
        other.dispose()

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(created)  # every job once: none lost, none twice
    with db.session() as s:
        assert jobs.counts_by_state(s)["succeeded"] == 60


def test_idempotent_creation_under_concurrency(db_url: str) -> None:
    db = Database(db_url)
    migrate(db.engine)
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(
        jobs.create_job(db, "local", GenerationCreate(prompt="same"), idempotency_key="k1").id)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(ids) == 8


def test_async_submissions_group_commit_and_keep_idempotency(db_url: str) -> None:
    db = Database(db_url)
    migrate(db.engine)

    async def submit_all() -> list[dict[str, object]]:
        same = [jobs.create_job_async(db, "local", GenerationCreate(prompt="same"), idempotency_key="k1")
                for _ in range(10)]
        other = [jobs.create_job_async(db, "local", GenerationCreate(prompt=f"p{i}"), idempotency_key=f"k{i + 2}")
                 for i in range(30)]
        return list(await asyncio.gather(*same, *other))

    created = asyncio.run(submit_all())
    assert len({c["id"] for c in created[:10]}) == 1  # one key, one job, however many concurrent retries
    assert len({c["id"] for c in created[10:]}) == 30
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM jobs").scalar() == 31
        assert conn.exec_driver_sql("SELECT count(*) FROM job_transitions WHERE state='queued'").scalar() == 31
    again = jobs.create_job(db, "local", GenerationCreate(prompt="same"), idempotency_key="k1")
    assert again.id == created[0]["id"] and again.prompt == "same"  # the sync path finds it too
    db.dispose()


def test_fast_job_json_matches_the_api_schema_in_every_state(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    migrate(db.engine)
    for i in range(4):
        jobs.create_job(db, "local", GenerationCreate(prompt=f"p{i}", duration=1.5, count=2, seed=i))
    running = jobs.claim_next(db, "w")
    assert running is not None and jobs.record_progress(db, running, 3, 7)
    done = jobs.claim_next(db, "w")
    assert done is not None and jobs.finish_job(db, done, "succeeded", result_count=2, sample_rate=16000, elapsed=0.5)
    failed = jobs.claim_next(db, "w")
    assert failed is not None and jobs.finish_job(db, failed, "failed", error="boom")
    with db.session() as s:
        orm_jobs = list(s.scalars(select(Job)))
    states = set()
    for job in orm_jobs:
        fast = jobs.job_json(jobs.read_job(db, job.id, "local"))
        assert fast == jobs.job_json(job)  # a row read by the status poll and an ORM object agree
        assert fast == JobOut.model_validate(fast).model_dump(mode="json")  # every field, in the API's types
        assert set(fast) == set(JobOut.model_fields)
        states.add(fast["state"])
        if fast["state"] == "succeeded":
            assert fast["progress"] == 100.0 and len(fast["results"]) == 2
        if fast["state"] == "running":
            assert fast["progress"] == round(100 * 3 / 7, 1) and fast["results"] == []
    assert states == {"queued", "running", "succeeded", "failed"}
    with pytest.raises(jobs.JobNotFound):
        jobs.read_job(db, orm_jobs[0].id, "key:someone-else")
    db.dispose()


def test_storage_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store")
    key = result_key("abc123", 0, "wav")
    store.put(key, b"RIFF")
    assert store.get(key) == b"RIFF" and store.exists(key)
    for bad in ("../etc/passwd", "jobs/../../x.wav", "/abs/path.wav", "jobs/a b/0.wav", "jobs/x/0.wav/.."):
        with pytest.raises(ValueError):
            check_key(bad)
    store.delete_prefix("jobs/abc123")
    assert not store.exists(key) and not list((tmp_path / "store").rglob("*.wav"))


def test_picture_is_a_valid_png_showing_the_sound(tmp_path: Path) -> None:
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[None]
    img = np.asarray(Image.open(io.BytesIO(render_sound(tone, sr))).convert("RGB")).astype(float)
    assert img.shape == (240, 640, 3)
    spec = img[82:].sum(axis=(1, 2))  # spectrogram rows, top = high frequencies
    peak_row = int(np.argmax(spec))
    expected = (1 - 1000 / (sr / 2)) * (img.shape[0] - 82)  # where 1 kHz lies on a linear axis
    assert abs(peak_row - expected) < 6
    silent = np.asarray(Image.open(io.BytesIO(render_sound(np.zeros((1, 0), np.float32), sr))))
    assert silent.shape == (240, 640, 3)


def test_model_process_progress_cancel_errors_and_crash() -> None:
    from soundgen.pipeline import GenerationRequest

    gen = ProcessGenerator(ModelSpec(tiny_random=True, model_dir=None, torch_threads=1))
    try:
        steps: list[tuple[int, int]] = []
        result = gen(GenerationRequest(prompt="hum", duration=0.1, seed=3), progress=lambda s, n: steps.append((s, n)))
        assert steps[-1][0] == steps[-1][1] and [s for s, _ in steps] == sorted(s for s, _ in steps)
        assert result.audio[0].shape[-1] == round(0.1 * result.sample_rate) and result.seed == 3

        seen: list[tuple[int, int]] = []
        with pytest.raises(CancelledError):
            gen(GenerationRequest(prompt="long", duration=240.0), progress=lambda s, n: seen.append((s, n)),
                should_cancel=lambda: len(seen) >= 2)
        assert seen and seen[-1][0] < seen[-1][1]  # stopped early
        with pytest.raises(InvalidRequestError, match="prompt"):
            gen(GenerationRequest(prompt="x" * 2000, duration=0.1))

        pid = gen._proc.pid
        assert pid is not None
        threading.Timer(0.5, lambda: os.kill(pid, signal.SIGKILL)).start()
        with pytest.raises(GeneratorCrashed, match="died"):
            gen(GenerationRequest(prompt="doomed", duration=240.0))
        t0 = time.monotonic()
        assert gen(GenerationRequest(prompt="after", duration=0.05)).audio  # a new child took over
        assert time.monotonic() - t0 < 30
    finally:
        gen.close()
