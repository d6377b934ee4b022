"""Fixtures of the service tests; helpers live in ``svc_helpers`` (importable from the tests here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from svc_helpers import LiveServer, start_server  # on the path through pyproject's pytest `pythonpath`

from soundgen.service.settings import ServiceSettings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A loopback server without auth, on its own data directory."""
    # Long limits: tests that cancel a running job ask for minutes of audio, so that the job is surely still
    # running whatever the speed of the tiny model.
    live = start_server(ServiceSettings.tiny(tmp_path_factory.mktemp("svc")).model_copy(update={"max_duration": 300.0}))
    yield live
    live.stop()
