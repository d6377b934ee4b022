"""Claims are leases: a job whose worker stops renewing its lease goes back to the queue, once, and the worker that
lost it can no longer renew, finish or requeue it; a claim by id takes a queued job only. On SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import update
from svc_helpers import tiny_generator

from soundgen.service import jobs
from soundgen.service.db import Database, migrate
from soundgen.service.events import EventBus
from soundgen.service.metrics import Metrics
from soundgen.service.models import Job, JobTransition
from soundgen.service.schemas import GenerationCreate
from soundgen.service.settings import ServiceSettings
from soundgen.service.storage import LocalStorage, result_key
from soundgen.service.worker import Worker


def _db(url: str) -> Database:
    db = Database(url)
    migrate(db.engine)
    return db


def test_an_expired_lease_is_reaped_once_and_the_old_claim_is_dead(db_url: str) -> None:
    db = _db(db_url)
    job_id = jobs.create_job(db, "local", GenerationCreate(prompt="drone")).id
    old = jobs.claim_job(db, job_id, "w1", lease_seconds=0.3)
    assert old is not None and old.lease_until is not None and old.attempts == 1
    assert jobs.claim_job(db, job_id, "w2") is None  # running: a second delivery of its task does nothing
    assert jobs.reap_expired(db) == []  # the lease holds
    assert jobs.extend_lease(db, old, lease_seconds=0.3)  # the heartbeat moves it on
    time.sleep(0.5)
    reapers = [Database(db_url) for _ in range(4)]  # every server reaps at once: the job is requeued by one
    found: list[list[str]] = []
    threads = [threading.Thread(target=lambda r=r: found.append(jobs.reap_expired(r))) for r in reapers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(found, key=len) == [[], [], [], [job_id]]
    assert not jobs.extend_lease(db, old)  # the dead worker cannot renew, finish or requeue it any more
    assert not jobs.finish_job(db, old, "succeeded")
    assert not jobs.requeue_job(db, old)

    new = jobs.claim_job(db, job_id, "w2")
    assert new is not None and new.attempts == 2 and new.worker_id == "w2"
    assert jobs.finish_job(db, new, "succeeded")
    with db.session() as s:
        trail = [t.state for t in s.query(JobTransition).filter_by(job_id=job_id).order_by(JobTransition.id)]
    assert trail == ["queued", "running", "queued", "running", "succeeded"]
    assert jobs.claim_job(db, job_id, "w3") is None  # ended: nothing to run
    for r in reapers:
        r.dispose()
    db.dispose()


def test_jobs_whose_task_was_never_sent_are_found(db_url: str) -> None:
    db = _db(db_url)
    first, second = (jobs.create_job(db, "local", GenerationCreate(prompt=p)).id for p in ("a", "b"))
    later = time.time() + 1
    assert jobs.undispatched(db, later, sent_before=0) == [first, second]
    jobs.mark_dispatched(db, [first])
    assert jobs.undispatched(db, later, sent_before=0) == [second]
    assert jobs.undispatched(db, time.time() - 60, sent_before=0) == []  # too young to be overdue
    assert jobs.undispatched(db, later, sent_before=later) == [first, second]  # sent long ago, never taken
    claimed = jobs.claim_job(db, second, "w")
    assert claimed is not None and jobs.undispatched(db, later, sent_before=later) == [first]
    db.dispose()


def test_a_worker_that_lost_its_lease_drops_its_run_and_leaves_the_new_one_alone(db_url: str, tmp_path: Path) -> None:
    """The job's lease runs out while its worker still runs it (a long pause); another server reaps it and another
    worker claims it. The first worker stops at its next step and writes, finishes and deletes nothing."""
    db = _db(db_url)
    settings = ServiceSettings.tiny(tmp_path).model_copy(update={"lease_seconds": 2.0, "database_url": db_url})
    storage = LocalStorage(tmp_path / "storage")
    worker = Worker(db, storage, EventBus(), tiny_generator, settings, Metrics())
    worker.generator = tiny_generator()
    job_id = jobs.create_job(db, "local", GenerationCreate(prompt="long drone", duration=60.0)).id
    claim = jobs.claim_job(db, job_id, worker.worker_id, settings.lease_seconds)
    assert claim is not None
    worker.start_heartbeat()
    run = threading.Thread(target=worker.run_job, args=(claim,))
    run.start()
    try:
        deadline = time.monotonic() + 60
        while jobs.read_job(db, job_id, None)["progress_step"] < 1:
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        storage.put(result_key(job_id, 0, "wav"), b"the new run's file")  # what the run that takes over writes
        taken = None
        while taken is None:  # the lease runs out (its renewal may slip in between once: then again)
            assert time.monotonic() < deadline, "the job could not be taken over"
            with db.write() as s:
                s.execute(update(Job).where(Job.id == job_id, Job.state == "running").values(lease_until=0.0))
            jobs.reap_expired(db)  # another server's reaper (the worker's own heartbeat may get there first)
            taken = jobs.claim_job(db, job_id, "w2")
        run.join(120)
        assert not run.is_alive()
    finally:
        worker.stop()
    row = jobs.read_job(db, job_id, None)
    assert row["state"] == "running" and row["worker_id"] == "w2" and row["attempts"] == 2
    assert storage.get(result_key(job_id, 0, "wav")) == b"the new run's file"  # neither replaced nor deleted
    assert jobs.finish_job(db, taken, "succeeded")
    db.dispose()
