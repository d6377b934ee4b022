"""Request checks in front of every route: the Host and Origin a request comes with, its content type, its size.

A server on loopback is reachable from any web page the user opens: a page can POST to it (a ``text/plain`` or
form body needs no CORS preflight), open its WebSockets, and, by pointing its own DNS name at 127.0.0.1 (DNS
rebinding), read its answers too. So, as plain ASGI middleware (cheap: no per-request objects beyond a dict):

- **Host**: on a loopback bind, only ``localhost``, loopback addresses and ``allowed_hosts`` may be named (a
  rebound name is not); on a wider bind, only ``allowed_hosts`` when that is set (421 otherwise).
- **Origin**: a request that changes state, and every WebSocket, is refused (403) when the browser says it comes
  from another site (``Origin`` not this server's nor one of ``cors_origins``; ``Sec-Fetch-Site: cross-site``).
- **Content type**: a state-changing request that carries a body must say ``application/json`` (415).
- **Size**: a body over ``max_body_bytes`` is refused (413), by ``Content-Length`` or once that many bytes came.

CORS itself is off unless ``cors_origins`` names origins (then Starlette's CORSMiddleware answers for them).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from soundgen.service.settings import ServiceSettings, is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})


class _TooLarge(Exception):
    pass


def host_name(value: str) -> str:
    """The host of a ``Host`` header or an origin's netloc, lower-case, without port or IPv6 brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class RequestGuard:
    """ASGI middleware applying the checks of this module to HTTP requests and WebSockets."""

    def __init__(self, app: ASGIApp, settings: ServiceSettings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.allowed = {h.lower() for h in settings.allowed_hosts}
        bound = settings.host.lower()
        self.any_host = "*" in self.allowed or (not self.allowed and not is_loopback(bound))
        if is_loopback(bound) or bound in WILDCARD_BINDS:
            self.allowed |= {"localhost", "127.0.0.1", "::1"}
        if bound not in WILDCARD_BINDS:
            self.allowed.add(host_name(bound))
        self.origins = {o.rstrip("/").lower() for o in settings.cors_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        problem = self._problem(scope, headers)
        if problem is not None:
            status, message = problem
            if kind == "websocket":
                return await send({"type": "websocket.close", "code": 4403, "reason": message[:120]})
            return await _answer(send, status, message)
        if kind == "http" and scope["method"] not in SAFE_METHODS:
            return await self._limited(scope, receive, send, headers)
        return await self.app(scope, receive, send)

    def _problem(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = host_name(headers.get("host", ""))
        if not self.any_host and host not in self.allowed and not is_loopback(host):
            return 421, (f"this server does not answer for host '{host}'; add it to SOUNDGEN_ALLOWED_HOSTS if it is "
                         "really this server's name")
        changes = scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS
        if changes and not self._same_site(headers):
            return 403, ("cross-site request refused: this server only takes changes from its own page (list other "
                         "origins in SOUNDGEN_CORS_ORIGINS)")
        if scope["type"] == "http" and changes and _has_body(headers):
            media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media != "application/json":
                return 415, f"send the body as JSON with 'Content-Type: application/json' (got '{media or 'none'}')"
        return None

    def _same_site(self, headers: dict[str, str]) -> bool:
        """False when the browser says the request comes from a page of another origin (or an opaque one)."""
        origin = headers.get("origin")
        if origin is None:  # not from a browser, or a same-origin GET-like request: ask Fetch metadata, if sent
            return headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
        origin = origin.rstrip("/").lower()
        if origin in self.origins:
            return True
        return origin != "null" and urlsplit(origin).netloc == headers.get("host", "").lower()

    async def _limited(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _answer(send, 413, f"the request body is over the {self.max_body}-byte limit")
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _answer(send, 413, f"the request body is over the {self.max_body}-byte limit")


def _has_body(headers: dict[str, str]) -> bool:
    return headers.get("content-length", "0") not in ("0", "") or "chunked" in headers.get("transfer-encoding", "")


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
