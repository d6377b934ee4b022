"""A throwaway Redis server for the tests: Debian's ``redis-server``, a temporary directory, a loopback port.

Nothing is saved to disk (no RDB snapshots, no append-only file); the server goes with the test session.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

START_SECONDS = 30.0


class RedisUnavailable(RuntimeError):
    """The server cannot be started here; the message says why (the tests skip with it)."""


@dataclass
class RedisServer:
    """A running server: its port, the process, and its directory."""

    port: int
    process: subprocess.Popen[bytes]
    root: Path

    @property
    def url(self) -> str:
        """The broker URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        """Empty every database (a test starts from no queued tasks)."""
        _command(self.port, b"FLUSHALL")

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


def _command(port: int, *words: bytes) -> bytes:
    """Send one command in Redis's protocol and return the first line of the answer."""
    request = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(request)
        return s.recv(1024).split(b"\r\n", 1)[0]


def start_redis() -> RedisServer:
    """Start ``redis-server`` on a free loopback port and wait until it answers PING.

    Raises:
        RedisUnavailable: no ``redis-server`` on the PATH, or it did not start.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable("redis-server not found on the PATH; install Debian's 'redis-server' package "
                               "(make setup does)")
    root = Path(tempfile.mkdtemp(prefix="soundgen-redis-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log = open(root / "redis.log", "wb")  # noqa: SIM115 - the server writes it as long as it runs
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(root), "--daemonize", "no"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RedisUnavailable(f"redis-server exited with {process.returncode}: "
                                   f"{(root / 'redis.log').read_text(errors='replace')[-500:]}")
        try:
            if _command(port, b"PING") == b"+PONG":
                return RedisServer(port, process, root)
        except OSError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RedisUnavailable(f"redis-server did not answer in {START_SECONDS:.0f} s")
