"""API keys (stored as SHA-256 hashes), who is asking, and per-key limits.

A key is ``sg_<id>_<secret>``: 32 random bytes make a plain SHA-256 a safe hash (no password stretching is
needed for random secrets). Bound to loopback the service needs no key and every request is the local user.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select, update

from soundgen.errors import InvalidRequestError
from soundgen.service.db import Database
from soundgen.service.models import ApiKey

LOCAL_OWNER = "local"


@dataclass
class CreatedKey:
    """A new key: ``secret`` is the full bearer token, shown once and never stored."""

    id: str
    name: str
    secret: str


@dataclass
class KeyInfo:
    """What ``soundgen keys list`` shows of a key."""

    id: str
    name: str
    prefix: str
    created_at: float
    revoked_at: float | None
    last_used_at: float | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(db: Database, name: str) -> CreatedKey:
    """Create and store a key named ``name``; returns the secret (the only time it is visible)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidRequestError("a key name must have 1 to 100 characters, e.g. --name alice-laptop")
    key_id = secrets.token_hex(4)
    secret = f"sg_{key_id}_{secrets.token_urlsafe(32)}"
    with db.write() as s:
        s.add(ApiKey(id=key_id, name=name, prefix=secret[:11], key_hash=_hash(secret), created_at=time.time()))
    return CreatedKey(id=key_id, name=name, secret=secret)


def list_keys(db: Database) -> list[KeyInfo]:
    """Every key, oldest first (revoked ones included, marked)."""
    with db.session() as s:
        rows = s.scalars(select(ApiKey).order_by(ApiKey.created_at))
        return [KeyInfo(k.id, k.name, k.prefix, k.created_at, k.revoked_at, k.last_used_at) for k in rows]


def revoke_key(db: Database, key_id: str) -> None:
    """Revoke key ``key_id`` (its jobs stay; requests with it fail from now on)."""
    with db.write() as s:
        key = s.get(ApiKey, key_id)
        done = key is not None and key.revoked_at is None
        if key is not None and done:
            key.revoked_at = time.time()
    if not done:
        raise InvalidRequestError(f"no active key with id {key_id!r}; see 'soundgen keys list'")


def active_key_count(db: Database) -> int:
    """Number of keys that are not revoked."""
    with db.session() as s:
        return len(list(s.scalars(select(ApiKey.id).where(ApiKey.revoked_at.is_(None)))))


def verify_key(db: Database, secret: str) -> str | None:
    """The owner id (``key:<id>``) of a valid, unrevoked ``secret``; None otherwise."""
    parts = secret.split("_")
    if len(parts) < 3 or parts[0] != "sg":
        return None
    with db.session() as s:
        key = s.get(ApiKey, parts[1])
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.key_hash, _hash(secret)):
        return None
    now = time.time()
    if key.last_used_at is None or now - key.last_used_at > 60:  # at most one write a minute per key
        with db.write() as s:
            s.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    return f"key:{key.id}"


class RateLimiter:
    """A token bucket per owner: ``per_minute`` refill, ``burst`` capacity."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(max(burst, 1))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, owner: str) -> float:
        """Take one token for ``owner``; returns 0 on success, else the seconds to wait (Retry-After)."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(owner, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[owner] = (tokens - 1, now)
                return 0.0
            self._buckets[owner] = (tokens, now)
            return max(1.0, math.ceil((1 - tokens) / self.rate))
