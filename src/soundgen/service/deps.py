"""Typed FastAPI dependencies: the service, a database session, and who is asking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from soundgen.service.auth import LOCAL_OWNER, verify_key
from soundgen.service.core import Service
from soundgen.service.oidc import IssuerUnavailable, TokenRejected

NO_KEY = ("this server needs an API key: send 'Authorization: Bearer <key>' "
          "(the server's owner creates keys with 'soundgen keys create --name NAME')")
BAD_KEY = "this API key is not valid (mistyped, or revoked); ask the server's owner for a new one"
NO_TOKEN = ("this server needs a sign-in or an API key: send 'Authorization: Bearer <token>' with a token of "
            "{issuer} (the page's 'Sign in' gets one) or a key made with 'soundgen keys create --name NAME'")


async def get_service(request: Request) -> Service:
    """The :class:`~soundgen.service.core.Service` of this app."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_session(service: ServiceDep) -> AsyncIterator[Session]:
    """One database session per request (made lazily: it connects on first use, in the endpoint's thread)."""
    with service.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def resolve_owner(service: Service, token: str | None) -> str:
    """The owner id for ``token`` (an API key, or with an OIDC issuer a JWT of it); raises 401 when a token is
    needed and missing or wrong, 503 when the issuer's keys cannot be fetched to tell."""
    if not service.settings.auth_required:
        return LOCAL_OWNER
    if token is None:
        missing = NO_KEY if service.oidc is None else NO_TOKEN.format(issuer=service.oidc.issuer)
        raise HTTPException(401, missing, headers={"WWW-Authenticate": "Bearer"})
    if service.oidc is not None and token.count(".") == 2:  # a JWT (keys are sg_<id>_<secret>, without dots)
        return _oidc_owner(service, token)
    owner = verify_key(service.db, token)
    if owner is None:
        raise HTTPException(401, BAD_KEY, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return owner


def _oidc_owner(service: Service, token: str) -> str:
    assert service.oidc is not None
    try:
        return service.oidc.verify(token)
    except TokenRejected as e:
        reason = str(e)
        # The header value is a quoted string: keep it printable ASCII without quotes or backslashes.
        safe = "".join(c for c in reason if " " <= c <= "~" and c not in '"\\')[:200]
        challenge = f'Bearer error="invalid_token", error_description="{safe}"'
        raise HTTPException(401, f"the sign-in token was refused: {reason}",
                            headers={"WWW-Authenticate": challenge}) from None
    except IssuerUnavailable as e:
        raise HTTPException(503, f"sign-in tokens cannot be checked right now: {e}",
                            headers={"Retry-After": "30"}) from None


async def get_owner(request: Request, service: ServiceDep) -> str:
    """Who is asking: ``local`` on a loopback server without auth, else ``key:<id>`` or ``oidc:<hash>``.

    Async so that the common case costs no trip through the thread pool; the key check reads the database,
    so it runs in a thread.
    """
    if not service.settings.auth_required:
        return LOCAL_OWNER
    return await run_in_threadpool(resolve_owner, service, bearer_token(request.headers.get("authorization")))


OwnerDep = Annotated[str, Depends(get_owner)]


def websocket_token(ws: WebSocket) -> tuple[str | None, str | None]:
    """The key of a WebSocket and the subprotocol to answer with.

    Browsers cannot set headers on a WebSocket, so the page sends the key as the subprotocol pair
    ``["bearer", "<key>"]``; other clients may use the Authorization header.
    """
    token = bearer_token(ws.headers.get("authorization"))
    protocols = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if "bearer" in protocols:
        i = protocols.index("bearer")
        if token is None and i + 1 < len(protocols):
            token = protocols[i + 1]
        return token, "bearer"
    return token, None
