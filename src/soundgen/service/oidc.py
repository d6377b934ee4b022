"""OpenID Connect: bearer JWTs of one configured issuer, checked against the keys it publishes.

``SOUNDGEN_OIDC_ISSUER`` names the issuer; its discovery document (``<issuer>/.well-known/openid-configuration``)
gives the JWKS address and, for the page's sign-in, the authorization and token endpoints. Both documents are
fetched over HTTPS (plain HTTP only on loopback) with a timeout and a size limit, and kept for
``oidc_cache_seconds``. A token signed with a key id the cached JWKS lacks refetches it, at most once every
``oidc_refetch_seconds``, so an issuer that rotates its keys is followed without letting a stream of forged key
ids hammer it.

Only RS256 (RSA keys of 2048 bits or more) and ES256 (P-256) are accepted; each key verifies only its own
algorithm, so ``alg: none``, HS256 with the public key as secret, and algorithm swaps are refused. ``exp``,
``iss``, ``aud`` and ``sub`` must be there; ``exp``, ``nbf`` and ``iat`` are checked with ``oidc_leeway_seconds``
of clock skew. A subject (``iss`` + ``sub``) becomes the owner id ``oidc:<hash>``, as a key becomes ``key:<id>``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from soundgen.errors import ConfigError, SoundgenError
from soundgen.service.settings import ServiceSettings, is_loopback

log = logging.getLogger(__name__)
T = TypeVar("T")
ALGORITHMS = ("RS256", "ES256")
MAX_DOCUMENT_BYTES = 256 * 1024  # a discovery document or a JWKS is a few KiB
FETCH_TIMEOUT = 5.0  # seconds for a whole fetch (connect, headers and body)
MAX_TOKEN_CHARS = 16 * 1024
MIN_RSA_BITS = 2048


class TokenRejected(Exception):
    """A bearer token that is not a valid token of the issuer; the message says why (the API answers 401)."""


class IssuerUnavailable(SoundgenError):
    """The issuer's discovery document or keys cannot be fetched or make no sense (the API answers 503)."""


@dataclass(frozen=True)
class Discovery:
    """The parts of the issuer's discovery document soundgen uses."""

    issuer: str
    jwks_uri: str
    authorization_endpoint: str | None
    token_endpoint: str | None
    end_session_endpoint: str | None


def owner_id(issuer: str, subject: str) -> str:
    """The owner id of a subject: ``oidc:`` and 40 hex digits of SHA-256 over issuer and subject (fits jobs.owner)."""
    return "oidc:" + hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:40]


def check_url(url: str, what: str) -> str:
    """``url`` when it is HTTPS, or HTTP to a loopback host (tests, a local issuer); else ConfigError."""
    parsed = urlparse(url)
    if parsed.scheme == "https" or (parsed.scheme == "http" and is_loopback(parsed.hostname or "")):
        if parsed.hostname:
            return url
    raise ConfigError(f"{what} {url!r} must be an https:// address (plain http only on loopback)")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx then fails as an HTTP error: the issuer's documents live at the addresses it names


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch_json(url: str, *, timeout: float = FETCH_TIMEOUT, max_bytes: int = MAX_DOCUMENT_BYTES) -> dict[str, Any]:
    """GET ``url`` as a JSON object, within ``timeout`` seconds in all and ``max_bytes`` of body.

    Raises:
        IssuerUnavailable: unreachable, an HTTP error, too slow, too large, or not a JSON object.
    """
    check_url(url, "address")
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with _OPENER.open(request, timeout=timeout) as res:
            body = bytearray()
            while len(body) <= max_bytes:
                if time.monotonic() > deadline:
                    raise IssuerUnavailable(f"{url} did not answer in {timeout:g} s")
                chunk = res.read(16384)
                if not chunk:
                    break
                body += chunk
    except urllib.error.HTTPError as e:
        raise IssuerUnavailable(f"{url} answered HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise IssuerUnavailable(f"{url} cannot be reached: {reason}") from None
    if len(body) > max_bytes:
        raise IssuerUnavailable(f"{url} sent more than {max_bytes} bytes")
    try:
        doc = json.loads(body)
    except ValueError:
        raise IssuerUnavailable(f"{url} did not send JSON") from None
    if not isinstance(doc, dict):
        raise IssuerUnavailable(f"{url} did not send a JSON object")
    return doc


def parse_discovery(doc: dict[str, Any], issuer: str) -> Discovery:
    """The discovery document of ``issuer``; its ``issuer`` must be exactly the configured one (OIDC Discovery 4.3).

    Raises:
        IssuerUnavailable: another issuer, or no usable ``jwks_uri``.
    """
    if doc.get("issuer") != issuer:
        raise IssuerUnavailable(f"the discovery document of {issuer} names the issuer {doc.get('issuer')!r}; set "
                                "SOUNDGEN_OIDC_ISSUER to exactly the issuer its tokens carry")
    jwks_uri = doc.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise IssuerUnavailable(f"the discovery document of {issuer} has no jwks_uri")
    try:
        check_url(jwks_uri, "jwks_uri")
    except ConfigError as e:
        raise IssuerUnavailable(str(e)) from None

    def endpoint(name: str) -> str | None:
        value = doc.get(name)
        return value if isinstance(value, str) else None

    return Discovery(issuer, jwks_uri, endpoint("authorization_endpoint"), endpoint("token_endpoint"),
                     endpoint("end_session_endpoint"))


def parse_jwks(doc: dict[str, Any]) -> dict[str | None, Any]:
    """Signing keys of a JWKS by key id, each bound to its one algorithm (RSA: RS256, EC P-256: ES256).

    Keys of other types, for encryption, of another declared ``alg``, or RSA under 2048 bits are left out.
    """
    import jwt

    keys: dict[str | None, Any] = {}
    for entry in doc.get("keys", []) if isinstance(doc.get("keys"), list) else []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        alg = {"RSA": "RS256", "EC": "ES256" if entry.get("crv") == "P-256" else None}.get(entry.get("kty", ""))
        if alg is None or entry.get("alg", alg) != alg:
            continue
        try:
            key = jwt.PyJWK(entry, algorithm=alg)
        except jwt.PyJWKError as e:
            log.warning("a key of the issuer's JWKS is left out: %s", e)
            continue
        if alg == "RS256" and key.key.key_size < MIN_RSA_BITS:
            log.warning("RSA key %r of the issuer's JWKS is left out: under %d bits", entry.get("kid"), MIN_RSA_BITS)
            continue
        kid = entry.get("kid")
        keys[kid if isinstance(kid, str) else None] = key
    return keys


def _reason(e: Exception, audiences: tuple[str, ...], issuer: str) -> str:
    """What was wrong with a token, in words a client can act on."""
    import jwt

    if isinstance(e, jwt.ExpiredSignatureError):
        return "the token has expired (exp); sign in again"
    if isinstance(e, jwt.ImmatureSignatureError):
        return "the token is not valid yet (nbf or iat in the future; is a clock wrong?)"
    if isinstance(e, jwt.InvalidAudienceError):
        return f"the token is for another audience (aud); this server accepts {', '.join(audiences)}"
    if isinstance(e, jwt.InvalidIssuerError):
        return f"the token was issued by another issuer (iss); this server accepts tokens of {issuer}"
    if isinstance(e, jwt.MissingRequiredClaimError):
        return f"the token has no {e.claim!r} claim"
    if isinstance(e, jwt.InvalidSignatureError):
        return "the token's signature does not verify"
    if isinstance(e, jwt.InvalidAlgorithmError):
        return f"the token's algorithm does not match its key ({e})"
    return f"the token is not a valid JWT ({e})"


class OidcVerifier:
    """Checks bearer JWTs of one issuer, fetching its discovery document and keys as needed (thread-safe).

    Args:
        issuer: the issuer, exactly as its tokens' ``iss`` says it.
        audiences: ``aud`` values a token may carry (one is enough).
        leeway: seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``.
        cache_seconds: how long the discovery document and the keys are kept.
        refetch_seconds: the shortest time between two fetches of the keys for an unknown key id.
    """

    def __init__(self, issuer: str, audiences: tuple[str, ...], *, leeway: float = 60, cache_seconds: float = 3600,
                 refetch_seconds: float = 30) -> None:
        self.issuer = check_url(issuer, "SOUNDGEN_OIDC_ISSUER")
        if not audiences:
            raise ConfigError("SOUNDGEN_OIDC_ISSUER needs SOUNDGEN_OIDC_AUDIENCE or SOUNDGEN_OIDC_CLIENT_ID: the "
                              "audience (aud) that tokens meant for this server carry")
        self.audiences = audiences
        self.leeway, self.cache_seconds, self.refetch_seconds = leeway, cache_seconds, refetch_seconds
        self._fetch_lock = threading.RLock()  # the JWKS fetch reads the discovery document inside it
        self._discovery: tuple[float, Discovery] | None = None  # (monotonic time fetched, document)
        self._keys: tuple[float, dict[str | None, Any]] | None = None
        self.fetches = 0  # JWKS fetches so far (for logs and tests)

    @property
    def discovery_url(self) -> str:
        """Where the discovery document is."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    def discovery(self) -> Discovery:
        """The discovery document (cached; refetched after ``cache_seconds``, kept when the refetch fails)."""
        return self._cached("_discovery", self.cache_seconds,
                            lambda: parse_discovery(fetch_json(self.discovery_url), self.issuer))

    def _jwks(self, *, refetch: bool) -> dict[str | None, Any]:
        """The issuer's keys: the cached ones, fetched again when older than ``cache_seconds`` or, with
        ``refetch`` (a key id they lack), older than ``refetch_seconds``."""

        def fetch() -> dict[str | None, Any]:
            self.fetches += 1
            return parse_jwks(fetch_json(self.discovery().jwks_uri))

        return self._cached("_keys", self.refetch_seconds if refetch else self.cache_seconds, fetch)

    def _cached(self, slot: str, max_age: float, fetch: Callable[[], T]) -> T:
        """The value in ``slot`` when younger than ``max_age``, else ``fetch()``'s (one fetch at a time; readers of a
        fresh value never wait). When a refetch fails the old value is kept, and tried again after ``max_age``."""
        entry: tuple[float, T] | None = getattr(self, slot)
        if entry is not None and time.monotonic() - entry[0] < max_age:
            return entry[1]
        with self._fetch_lock:
            entry = getattr(self, slot)  # another thread may have fetched it meanwhile
            if entry is not None and time.monotonic() - entry[0] < max_age:
                return entry[1]
            try:
                value = fetch()
            except IssuerUnavailable as e:
                if entry is None:
                    raise
                log.warning("keeping what the issuer sent before: fetching it again failed: %s", e)
                value = entry[1]
            setattr(self, slot, (time.monotonic(), value))
            return value

    def _key(self, kid: str | None) -> Any:
        keys = self._jwks(refetch=False)
        if kid not in keys:
            keys = self._jwks(refetch=True)  # the issuer may have rotated its keys since they were fetched
        if kid in keys:
            return keys[kid]
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        raise TokenRejected(f"the token is signed with a key the issuer does not publish (kid {kid!r})")

    def verify(self, token: str) -> str:
        """The owner id of a valid token.

        Raises:
            TokenRejected: malformed, of another issuer or audience, expired, not yet valid, an algorithm other
                than RS256/ES256, an unknown key, or a signature that does not verify.
            IssuerUnavailable: the issuer's keys cannot be fetched (nothing can be said about the token).
        """
        import jwt

        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected(f"the token is longer than {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as e:
            raise TokenRejected(f"the token is not a valid JWT ({e})") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise TokenRejected(f"the token's algorithm {alg!r} is not accepted: only {' and '.join(ALGORITHMS)}")
        if unverified.get("iss") != self.issuer:  # before any key is fetched: a foreign token costs no request
            raise TokenRejected(_reason(jwt.InvalidIssuerError(), self.audiences, self.issuer))
        kid = header.get("kid")
        key = self._key(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(token, key, algorithms=list(ALGORITHMS), audience=list(self.audiences),
                                issuer=self.issuer, leeway=self.leeway,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWTError as e:
            raise TokenRejected(_reason(e, self.audiences, self.issuer)) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise TokenRejected("the token's subject (sub) is empty")
        return owner_id(self.issuer, subject)


def verifier_from_settings(settings: ServiceSettings) -> OidcVerifier | None:
    """The verifier ``settings`` ask for, or None without an issuer (nothing is fetched yet).

    Raises:
        ConfigError: an issuer that is not HTTPS, or no audience and no client id.
    """
    if not settings.oidc_issuer:
        return None
    audiences = tuple(dict.fromkeys(a for a in (settings.oidc_audience, settings.oidc_client_id) if a))
    return OidcVerifier(settings.oidc_issuer, audiences, leeway=settings.oidc_leeway_seconds,
                        cache_seconds=settings.oidc_cache_seconds, refetch_seconds=settings.oidc_refetch_seconds)
