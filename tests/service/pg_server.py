"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary directory, a unix socket.

No TCP port is opened (``listen_addresses=''``), so nothing else on the machine can clash with it or reach it.
initdb refuses to run as root, so under root (as in CI) the server runs as ``nobody`` in a directory owned by
that user. Durability is off (``fsync=off``): the data is thrown away at the end.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian keeps the server binaries here, off the PATH
START_SECONDS = 30.0


class PostgresUnavailable(RuntimeError):
    """The server cannot be started here; the message says why (the tests skip with it)."""


def find_bin_dir() -> Path:
    """The directory with ``initdb`` and ``postgres``: Debian's newest version first, then the PATH."""
    candidates = sorted(glob.glob(BIN_GLOB), key=lambda p: _version_key(Path(p).parent.name), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for d in candidates:
        if all(os.access(Path(d) / b, os.X_OK) for b in ("initdb", "postgres")):
            return Path(d)
    raise PostgresUnavailable("PostgreSQL server binaries not found (no initdb/postgres in /usr/lib/postgresql/*/bin "
                              "or on the PATH); install Debian's 'postgresql' package (make setup does)")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


@dataclass
class PostgresServer:
    """A running server: its socket directory, the process, and the databases made for tests."""

    root: Path
    socket_dir: Path
    process: subprocess.Popen[bytes]
    log: Path
    databases: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3 over the unix socket)."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def new_database(self) -> str:
        """Create an empty database and return its URL (each test gets its own)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then remove the directory."""
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)


def _run_as() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to ``nobody`` (initdb and postgres refuse root); empty otherwise."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("nobody")
    except KeyError as e:
        raise PostgresUnavailable("running as root and there is no 'nobody' user to run PostgreSQL as") from e
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [],
            "env": {**os.environ, "HOME": "/nonexistent", "USER": "nobody", "LOGNAME": "nobody"}}


def _make_root(as_user: dict[str, Any]) -> Path:
    """A fresh directory the server's user owns, on a short path (a unix socket path has ~100 bytes at most)."""
    base = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
    root = Path(tempfile.mkdtemp(prefix="soundgen-pg-", dir=base))
    if as_user:
        os.chown(root, as_user["user"], as_user["group"])
        probe = subprocess.run(["test", "-w", str(root)], **as_user, capture_output=True)
        if probe.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable(f"user nobody cannot write {root} (a parent directory shuts it out)")
    return root


def start_postgres() -> PostgresServer:
    """initdb a new cluster in a temporary directory and start its server; returns once it takes connections.

    Raises:
        PostgresUnavailable: no binaries, no psycopg, or the server would not start (with its log).
    """
    try:
        import psycopg
    except ImportError as e:
        raise PostgresUnavailable("psycopg is not installed (pip install -e '.[service]')") from e
    bin_dir = find_bin_dir()
    as_user = _run_as()
    root = _make_root(as_user)
    data, sock, log = root / "data", root / "sock", root / "server.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        init = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                               "--encoding=UTF8", "--locale=C", "--no-sync"], capture_output=True, text=True,
                              timeout=120, **as_user)
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {(init.stderr or init.stdout).strip()[-800:]}")
        sock.mkdir()
        if as_user:
            os.chown(sock, as_user["user"], as_user["group"])
        with open(log, "wb") as log_file:
            proc = subprocess.Popen([str(bin_dir / "postgres"), "-D", str(data), "-k", str(sock), "-c",
                                     "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
                                     "-c", "full_page_writes=off", "-c", "max_connections=300"],
                                    stdout=log_file, stderr=subprocess.STDOUT, **as_user)
        server = PostgresServer(root, sock, proc, log)
        deadline = time.monotonic() + START_SECONDS
        while True:
            if proc.poll() is not None:
                raise PostgresUnavailable(f"postgres exited at start: {log.read_text(errors='replace')[-800:]}")
            try:
                psycopg.connect(host=str(sock), user="postgres", dbname="postgres", connect_timeout=2).close()
                return server
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    server.stop()
                    raise PostgresUnavailable(f"postgres did not take connections in {START_SECONDS:.0f} s") from None
                time.sleep(0.1)
    except BaseException:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(root, ignore_errors=True)
        raise
