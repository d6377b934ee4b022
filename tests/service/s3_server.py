"""An S3-compatible server for the tests: moto's standalone server in a subprocess on a free loopback port.

The service code never learns which server this is: the tests point boto3 at it with the usual AWS variables
(``AWS_ENDPOINT_URL``, test credentials, a region), as a deployment would for MinIO or R2.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from svc_helpers import free_port

START_SECONDS = 30.0


class S3Unavailable(RuntimeError):
    """The server cannot be started here; the message says why (the tests skip with it)."""


@dataclass
class S3Server:
    """A running S3-compatible server and the environment that points boto3 at it."""

    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """The AWS variables of a client of this server (no profile files, no instance metadata)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "soundgen-test",
                "AWS_SECRET_ACCESS_KEY": "soundgen-test-secret", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                "AWS_EC2_METADATA_DISABLED": "true"}

    def stop(self) -> None:
        """Stop the server and remove its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.unlink(missing_ok=True)


def _start_once() -> S3Server:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="soundgen-s3-", suffix=".log")[1])
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    server = S3Server(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")[-600:]
            server.stop()
            raise S3Unavailable(f"the S3 server exited at start: {text}")
        try:
            httpx.get(server.endpoint, timeout=2)  # any answer means it listens
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise S3Unavailable(f"the S3 server did not answer in {START_SECONDS:.0f} s")


def start_s3() -> S3Server:
    """Start the server (a second try on another port, should the free port be taken meanwhile).

    Raises:
        S3Unavailable: moto's server is not installed or would not start.
    """
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise S3Unavailable("moto[server] is not installed (pip install -e '.[dev]')")
    try:
        return _start_once()
    except S3Unavailable:
        return _start_once()
