"""``soundgen serve`` (the web page and API), ``soundgen worker`` (runs the model for servers with a broker) and
``soundgen keys create|list|revoke`` (the API keys)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(groups: Any) -> None:
    """Add ``serve`` at the top level and ``create``/``list``/``revoke`` to the ``keys`` group."""
    p = groups.top.add_parser("serve", help="serve the web page and API on this machine")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1; others require API keys)")
    p.add_argument("--port", type=int, default=None, help="port (default 8000)")
    p.add_argument("--model", type=Path, default=None, help="model directory (default: the bundled model)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="where jobs and results live (default $SOUNDGEN_HOME or ~/.local/share/soundgen)")
    p.add_argument("--tiny-random-model", action="store_true",
                   help="serve a tiny UNTRAINED model (output is noise): for demos and tests only")
    p.add_argument("--workers", type=int, default=None, help="generation threads (default 1)")
    p.add_argument("--check", action="store_true",
                   help="only try every configured engine (database, storage, broker, OIDC issuer) and say in one "
                        "line which cannot be reached (exit 1) or that all can (exit 0)")
    p.set_defaults(func=_serve)

    w = groups.top.add_parser("worker", help="run the model for the servers sharing SOUNDGEN_BROKER_URL (Celery on "
                                             "Redis) and their database and storage")
    w.add_argument("--concurrency", type=int, default=1, help="jobs at once, each with its own model process "
                                                              "(default 1)")
    w.add_argument("--model", type=Path, default=None, help="model directory (default: the bundled model)")
    w.add_argument("--data-dir", type=Path, default=None,
                   help="the data directory of the database and storage when their URLs are not set")
    w.add_argument("--tiny-random-model", action="store_true",
                   help="run a tiny UNTRAINED model (output is noise): for demos and tests only")
    w.set_defaults(func=_worker)

    keys = groups.group("keys")
    c = keys.add_parser("create", help="create an API key (shown once)")
    c.add_argument("--name", required=True, help="who or what the key is for, e.g. alice-laptop")
    c.set_defaults(func=_keys_create)
    ls = keys.add_parser("list", help="list API keys")
    ls.set_defaults(func=_keys_list)
    r = keys.add_parser("revoke", help="revoke an API key")
    r.add_argument("key_id", help="the key's id (first column of 'soundgen keys list')")
    r.set_defaults(func=_keys_revoke)
    for sub in (c, ls, r):
        sub.add_argument("--data-dir", type=Path, default=None, help="the service's data directory")


def _settings(args: argparse.Namespace) -> Any:
    from soundgen.service.settings import ServiceSettings

    overrides: dict[str, Any] = {}
    for name, field in (("host", "host"), ("port", "port"), ("model", "model_dir"), ("data_dir", "data_dir"),
                        ("workers", "workers")):
        value = getattr(args, name, None)
        if value is not None:
            overrides[field] = value
    if getattr(args, "tiny_random_model", False):
        overrides["tiny_random_model"] = True
    return ServiceSettings(**overrides)


def _database(args: argparse.Namespace) -> Any:
    from soundgen.service.db import Database, migrate

    db = Database(_settings(args).db_url)
    migrate(db.engine)
    return db


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from soundgen.errors import ConfigError
    from soundgen.service.app import check_model_available, create_app, default_generator
    from soundgen.service.auth import active_key_count
    from soundgen.service.oidc import verifier_from_settings

    settings = _settings(args)
    if args.check:
        return _check(settings)
    check_model_available(settings)
    verifier_from_settings(settings)  # a malformed OIDC setting is one line now, not a failed start-up later
    if settings.auth_required and not settings.oidc_issuer:
        db = _database(args)
        if active_key_count(db) == 0:
            raise ConfigError(
                f"refusing to serve on {settings.host} without API keys: anyone who can reach this address "
                "could use the server; create a key with 'soundgen keys create --name NAME' (same --data-dir) "
                "or bind to 127.0.0.1")
        db.dispose()
    if settings.broker_url:  # the model runs in `soundgen worker` processes, not here
        app = create_app(settings)
    else:
        # Load the model before binding the port, so that a broken model is one line on stderr, not a 503 later.
        generator = default_generator(settings)()
        app = create_app(settings, lambda: generator)
    print(f"soundgen: serving on http://{settings.host}:{settings.port}/ (data in {settings.data_dir})", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", ws="websockets-sansio")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from soundgen.service.app import check_model_available
    from soundgen.service.celery_worker import run_worker

    settings = _settings(args)
    check_model_available(settings)
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    return run_worker(settings, args.concurrency, loglevel=level if isinstance(level, str) else "WARNING")


def _check(settings: Any) -> int:
    from soundgen.service.check import check_engines, summary

    ok, line = summary(check_engines(settings))
    print(f"soundgen: {line}", flush=True)
    return 0 if ok else 1


def _keys_create(args: argparse.Namespace) -> int:
    from soundgen.cli.limits import terminal_text
    from soundgen.service.auth import create_key

    key = create_key(_database(args), args.name)
    print(f"created key {key.id} ({terminal_text(key.name)}); it is shown only now, keep it secret:\n{key.secret}")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from soundgen.cli.limits import terminal_text
    from soundgen.service.auth import list_keys

    keys = list_keys(_database(args))
    if not keys:
        print("no API keys; create one with 'soundgen keys create --name NAME'")
        return 0
    print(f"{'ID':<10} {'NAME':<24} {'PREFIX':<12} {'CREATED':<17} {'LAST USED':<17} STATUS")
    for k in keys:
        status = "revoked" if k.revoked_at else "active"
        print(f"{k.id:<10} {terminal_text(k.name)[:24]:<24} {k.prefix:<12} {_when(k.created_at):<17} "
              f"{_when(k.last_used_at):<17} {status}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from soundgen.service.auth import revoke_key

    revoke_key(_database(args), args.key_id)
    print(f"revoked key {args.key_id}")
    return 0


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "never"
