"""Database engine, sessions and schema migrations (Alembic, run programmatically at start-up).

SQLite (a file under the data directory) is the default; ``SOUNDGEN_DATABASE_URL=postgresql+psycopg://...``
(psycopg 3) puts the jobs in PostgreSQL, where several server processes can share them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from soundgen.errors import SoundgenError

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
CHECKPOINT_SECONDS = 1.0
# Key of the PostgreSQL advisory lock that start-ups hold while migrating (two servers starting at once on
# one database would otherwise both create the tables): "soundgen" in ASCII, as a bigint.
MIGRATION_LOCK = 0x736F756E6467656E


def database_url(url: str) -> str:
    """``url`` with PostgreSQL's driver made explicit: ``postgresql://`` and ``postgres://`` mean psycopg 3.

    Without it SQLAlchemy would pick psycopg2, which the service extra does not install.
    """
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``; SQLite files get WAL mode, a busy timeout and foreign keys.

    WAL lets the API read while the worker writes; ``synchronous=NORMAL`` in WAL mode keeps every
    committed transaction across a process kill (only a power cut may lose the last ones). Other databases
    (PostgreSQL) get a pool whose connections are checked before use, so a restarted database server costs
    one failed check, not a failed request.
    """
    url = database_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20,
                               max_overflow=40)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=40)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # No checkpoint inside a writer's commit (it fsyncs, which can take long on a busy disk while every other
    # writer waits); Database runs them in a background thread instead.
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


def migrate(engine: Engine) -> None:
    """Bring the schema of ``engine``'s database to the newest Alembic revision."""
    # Alembic logs every plugin and revision at INFO (some at import); one line of ours is enough.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger("alembic").level))
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    with _sqlite_migration_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # one migrating server at a time; released at commit
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    log.debug("database schema is at the newest revision")


@contextlib.contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """One migrating process at a time on a SQLite file (servers and workers starting at once would otherwise
    both create the tables): an exclusive lock on ``<file>.migrate-lock`` beside it, as PostgreSQL's advisory lock."""
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    try:
        import fcntl
    except ImportError:  # not POSIX: start one process first
        fcntl = None  # type: ignore[assignment]
    if path is None or fcntl is None:
        yield
        return
    with open(path.with_name(path.name + ".migrate-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class DatabaseUnavailableError(SoundgenError):
    """The database cannot be used (its file was deleted or replaced, or it cannot be written); the API answers
    503 with this message."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and for ``:memory:``)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


class Database:
    """An engine plus its session factory.

    SQLite has one writer at a time, and a blocked writer waits in sleeps of 1, 2, 5, 10... ms. Within one
    process, write transactions therefore queue on a Python lock instead (woken the moment the previous
    writer commits); PostgreSQL needs no such lock and gets none.
    """

    def __init__(self, url: str) -> None:
        url = database_url(url)
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock: threading.Lock | None = threading.Lock() if url.startswith("sqlite") else None
        self._closed = threading.Event()
        self.path = sqlite_path(url)
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file the connections opened
        if self.path is not None:
            event.listen(self.engine, "connect", self._remember_file)
            event.listen(self.engine, "begin", self._check_file)
        if self._write_lock is not None:
            threading.Thread(target=self._checkpoints, name="soundgen-sqlite-checkpoint", daemon=True).start()

    def _remember_file(self, _conn: Any, _record: Any) -> None:
        if self._identity is None and self.path is not None:
            with contextlib.suppress(OSError):
                st = self.path.stat()
                self._identity = (st.st_dev, st.st_ino)

    def _check_file(self, _conn: Any) -> None:
        """Before every transaction: the file the connections hold is still the one at the path (a stat, ~2 us).

        SQLite keeps writing into a deleted file through its open descriptors, so without this check a deleted
        database would take every job since with it at the next start.
        """
        problem = self.file_problem()
        if problem is not None:
            raise DatabaseUnavailableError(problem)

    def file_problem(self) -> str | None:
        """Why the SQLite file is not the one this server opened (deleted, replaced), or None."""
        if self.path is None or self._identity is None:
            return None
        gone = (f"the database file {self.path} was deleted or replaced while the server ran (what it wrote since "
                "is in the old file); restart the server")
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return gone
        except OSError as e:
            return f"the database file {self.path} cannot be reached: {e.strerror}"
        # A connection opened after a deletion makes a new, empty file at the path: the inode tells.
        return gone if (st.st_dev, st.st_ino) != self._identity else None

    def write_problem(self) -> str | None:
        """Why this database cannot take a write right now (checked with a fresh connection), or None."""
        problem = self.file_problem()
        if problem is not None:
            return problem
        if self.path is None:
            return self._server_write_problem()
        try:
            conn = sqlite3.connect(self.path, timeout=1.0)
        except sqlite3.Error as e:
            return f"the database file {self.path} cannot be opened: {e}"
        try:  # a write that is rolled back: only a real write meets a read-only file
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE _soundgen_write_probe (x)")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e):  # busy is not broken
                return f"the database file {self.path} cannot be written: {e}"
        finally:
            conn.rollback()
            conn.close()
        # Connections already open keep writing through their descriptors; a new one would be read-only.
        for path in (self.path, self.path.parent):
            if not os.access(path, os.W_OK):
                return f"{path} cannot be written (permissions); new database connections would be read-only"
        return None

    def _server_write_problem(self) -> str | None:
        """A database server (PostgreSQL) that only takes reads: a hot standby, or read-only by setting."""
        if self.engine.dialect.name != "postgresql":
            return None
        with self.engine.connect() as conn:
            read_only = conn.execute(text("SHOW transaction_read_only")).scalar()
        if read_only == "on":
            return ("the PostgreSQL database only takes reads (a standby, or default_transaction_read_only); "
                    "point SOUNDGEN_DATABASE_URL at the primary")
        return None

    def _checkpoints(self) -> None:
        """Fold the SQLite write-ahead log into the database every second, beside the writers."""
        while not self._closed.wait(CHECKPOINT_SECONDS):
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as e:  # noqa: BLE001 - a missed checkpoint is retried at the next tick
                log.debug("checkpoint skipped: %s", e)

    def session(self) -> Session:
        """A new session (use it as a context manager) for reading."""
        return self.sessions()

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A session in a write transaction, committed at the end of the block (rolled back on error)."""
        with self.writer_turn(), self.sessions() as s, s.begin():
            yield s

    @contextlib.contextmanager
    def writer_turn(self) -> Iterator[None]:
        """Hold this process's turn to write (SQLite); a no-op for databases with concurrent writers."""
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            yield

    @property
    def serializes_writes(self) -> bool:
        """Whether writers of this process take turns (SQLite)."""
        return self._write_lock is not None

    def dispose(self) -> None:
        """Stop the checkpoints and close every pooled connection."""
        self._closed.set()
        self.engine.dispose()
