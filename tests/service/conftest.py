"""Fixtures of the service tests; helpers live in ``svc_helpers`` (importable from the tests here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_server import PostgresServer, PostgresUnavailable, start_postgres
from redis_server import RedisServer, RedisUnavailable, start_redis
from svc_helpers import (  # tests/service is on the path
    DATABASES,
    SCREENSHOT_DIRS,
    LiveServer,
    api_settings,
    database_url,
    start_server,
)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test session (Debian's binaries, a temporary directory); skips without one."""
    try:
        server = start_postgres()
    except PostgresUnavailable as e:
        pytest.skip(f"PostgreSQL tests need a server: {e}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server of this test session (Debian's redis-server on a loopback port); skips without one."""
    try:
        server = start_redis()
    except RedisUnavailable as e:
        pytest.skip(f"distributed-worker tests need a Redis server: {e}")
    yield server
    server.stop()


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each job-store test runs on SQLite and on PostgreSQL."""
    return database_url(request, request.param, tmp_path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A loopback server without auth, on its own data directory."""
    live = start_server(api_settings(tmp_path_factory.mktemp("svc")))
    yield live
    live.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say where the browser tests' screenshots are (1280x900 and 390x844, for a reviewer to look at)."""
    shots = sorted(p for d in SCREENSHOT_DIRS for p in d.glob("*.png"))
    if shots:
        terminalreporter.write_sep("-", f"{len(shots)} screenshots of the page")
        for d in sorted({p.parent for p in shots}):
            terminalreporter.write_line(f"{d}: {', '.join(p.name for p in shots if p.parent == d)}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium for one test module's browser tests (the modules skip without it)."""
    from playwright.sync_api import sync_playwright
    from test_browser import ARGS, CHROMIUM

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()
