"""Claims are leases: a job whose worker stops renewing its lease goes back to the queue, once, and the worker that
lost it can no longer renew, finish or requeue it; a claim by id takes a queued job only. On SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
import time

from soundgen.service import jobs
from soundgen.service.db import Database, migrate
from soundgen.service.models import JobTransition
from soundgen.service.schemas import GenerationCreate


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
