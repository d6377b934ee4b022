"""``soundgen serve --check``: can every engine the settings name be reached?

Each engine is tried the way the server uses it, with short timeouts and no retries: the database answers
``SELECT 1``; local storage is a directory that can be written, an S3 bucket answers a HEAD request; the OIDC
issuer serves its discovery document and keys; the broker (Redis) answers PING. Nothing is written or migrated (a
SQLite file is created where there was none, as the server would).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from soundgen.service.settings import ServiceSettings

CHECK_TIMEOUT = 5.0  # seconds per engine


@dataclass(frozen=True)
class EngineCheck:
    """One engine: what it is, where (passwords hidden), and why it cannot be used (None: it can)."""

    engine: str
    target: str
    problem: str | None


def check_engines(settings: ServiceSettings, timeout: float = CHECK_TIMEOUT) -> list[EngineCheck]:
    """Try every engine ``settings`` configure, in turn."""
    checks = [_check_database(settings.db_url, timeout), _check_storage(settings.storage_root, timeout)]
    if settings.broker_url:
        checks.append(_check_broker(settings.broker_url, timeout))
    if settings.oidc_issuer:
        checks.append(_check_issuer(settings, timeout))
    return checks


def _check_broker(url: str, timeout: float) -> EngineCheck:
    from soundgen.service.broker import broker_problem, hide_password

    return EngineCheck("broker", hide_password(url), broker_problem(url, timeout))


def summary(checks: list[EngineCheck]) -> tuple[bool, str]:
    """Whether all engines can be reached, and one line that says so or names those that cannot."""
    failed = [c for c in checks if c.problem is not None]
    if not failed:
        return True, "all engines are reachable: " + ", ".join(f"{c.engine} {c.target}" for c in checks)
    return False, "cannot reach " + "; ".join(f"{c.engine} {c.target} ({c.problem})" for c in failed)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:300]


def _check_database(url: str, timeout: float) -> EngineCheck:
    from sqlalchemy import create_engine, make_url, text

    from soundgen.service.db import database_url

    url = database_url(url)
    try:
        parsed = make_url(url)
        target = parsed.render_as_string(hide_password=True)
    except Exception as e:  # noqa: BLE001 - a malformed URL is a problem to name, not a crash
        return EngineCheck("database", url.split("@")[-1], _one_line(e))
    args: dict[str, object] = {}
    if parsed.get_backend_name() == "postgresql":
        args["connect_timeout"] = max(2, int(timeout))  # libpq's minimum is 2 s
    elif parsed.get_backend_name() == "sqlite":
        args["timeout"] = timeout
        path = parsed.database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, connect_args=args, pool_pre_ping=False)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as e:  # noqa: BLE001 - any failure means "cannot be reached"; say which
        return EngineCheck("database", target, _one_line(getattr(e, "orig", None) or e))
    return EngineCheck("database", target, None)


def _check_storage(url: str, timeout: float) -> EngineCheck:
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        return _check_s3(url, timeout)
    root = Path(parsed.path if parsed.scheme == "file" else url)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return EngineCheck("storage", str(root), f"cannot be created: {e.strerror}")
    if not os.access(root, os.W_OK | os.X_OK):
        return EngineCheck("storage", str(root), "cannot be written (permissions)")
    return EngineCheck("storage", str(root), None)


def _check_s3(url: str, timeout: float) -> EngineCheck:
    from soundgen.service.s3storage import parse_s3_url, s3_client

    logging.getLogger("botocore").setLevel(logging.WARNING)  # its INFO lines would break the one-line answer

    endpoint = None
    try:
        bucket, _ = parse_s3_url(url)
        client = s3_client(timeout=timeout, attempts=1)
        endpoint = client.meta.endpoint_url
        client.head_bucket(Bucket=bucket)
    except Exception as e:  # noqa: BLE001 - no route, no credentials, no bucket: all named in the one line
        return EngineCheck("storage", url + (f" at {endpoint}" if endpoint else ""), _one_line(e))
    return EngineCheck("storage", f"{url} at {endpoint}", None)


def _check_issuer(settings: ServiceSettings, timeout: float) -> EngineCheck:
    from soundgen.service.oidc import fetch_json, parse_discovery, parse_jwks, verifier_from_settings

    issuer = settings.oidc_issuer or ""
    try:
        verifier = verifier_from_settings(settings)
        assert verifier is not None
        found = parse_discovery(fetch_json(verifier.discovery_url, timeout=timeout), verifier.issuer)
        if not parse_jwks(fetch_json(found.jwks_uri, timeout=timeout)):
            return EngineCheck("OIDC issuer", issuer, f"{found.jwks_uri} has no RS256 or ES256 signing key")
    except Exception as e:  # noqa: BLE001 - a bad setting or an unreachable issuer: both named
        return EngineCheck("OIDC issuer", issuer, _one_line(e))
    return EngineCheck("OIDC issuer", issuer, None)
