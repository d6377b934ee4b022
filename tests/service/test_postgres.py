"""What only PostgreSQL has: row locks that claims skip, servers that migrate at the same moment, read-only
databases, and the plain ``postgresql://`` URL (on a real server the suite starts; skipped without binaries)."""

from __future__ import annotations

import threading

from pg_server import PostgresServer
from sqlalchemy import inspect, text

from soundgen.service import jobs
from soundgen.service.db import Database, database_url, migrate
from soundgen.service.schemas import GenerationCreate


def test_a_claim_skips_the_job_another_claimer_has_locked(postgres: PostgresServer) -> None:
    db = Database(postgres.new_database())
    migrate(db.engine)
    first, second = (jobs.create_job(db, "local", GenerationCreate(prompt=p)).id for p in ("first", "second"))
    with db.engine.connect() as holder:  # another claimer, stopped between its SELECT and its UPDATE
        holder.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": first})
        job = jobs.claim_next(db, "w1")  # does not wait for the lock: it takes the next job
        assert job is not None and job.id == second
        holder.rollback()
    job = jobs.claim_next(db, "w2")
    assert job is not None and job.id == first and jobs.claim_next(db, "w3") is None
    db.dispose()


def test_servers_starting_together_migrate_once(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    errors: list[BaseException] = []

    def start() -> None:
        db = Database(url)
        try:
            migrate(db.engine)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)
        db.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    db = Database(url)
    assert {"jobs", "job_transitions", "api_keys", "alembic_version"} <= set(inspect(db.engine).get_table_names())
    db.dispose()


def test_a_read_only_database_is_reported_and_plain_urls_use_psycopg(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    assert database_url(plain) == url and database_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    db = Database(plain)
    migrate(db.engine)
    assert db.write_problem() is None
    name = db.engine.url.database
    with db.engine.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        conn.commit()
    db.engine.dispose()  # new connections get the setting
    problem = db.write_problem()
    assert problem is not None and "only takes reads" in problem
    db.dispose()
