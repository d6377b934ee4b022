"""The context of one GraphQL request or WebSocket: the service, the caller's token, and who the caller is."""

from __future__ import annotations

import time

from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import OperationalError
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from soundgen.service.auth import LOCAL_OWNER
from soundgen.service.core import Service
from soundgen.service.db import DatabaseUnavailableError
from soundgen.service.deps import bearer_token, resolve_owner
from soundgen.service.gql.errors import api_error, from_http


class Context(BaseContext):
    """The context of one GraphQL request or WebSocket: the service, the caller's token, and who they are.

    Args:
        service: this process's service state.
        token: the bearer token the caller sent (None: none).
    """

    def __init__(self, service: Service, token: str | None) -> None:
        super().__init__()
        self.service = service
        self.token = token
        self.refusal: HTTPException | None = None  # why the token was refused (HTTP: answered before running)
        self._owner: str | None = None
        self._checked_at = 0.0  # time.monotonic() of the last check of the token

    @property
    def owner(self) -> str:
        """The owner id of the caller (``local``, ``key:<id>`` or ``oidc:<hash>``)."""
        assert self._owner is not None, "the owner is resolved before any resolver runs"
        return self._owner

    async def authenticate(self) -> None:
        """Resolve the owner of ``token``; raises the REST refusal (401, or 503 when the issuer or the database
        that would tell cannot be reached) when it cannot be."""
        if not self.service.settings.auth_required:  # no database read on the common loopback case
            self._owner = LOCAL_OWNER
            return
        try:
            self._owner = await run_in_threadpool(resolve_owner, self.service, self.token)
        except (DatabaseUnavailableError, OperationalError) as e:
            known = api_error(e)
            assert known is not None
            raise HTTPException(503, known.message, headers={"Retry-After": "30"}) from None
        self._checked_at = time.monotonic()  # only a check that passed: after a refusal every caller asks again

    async def recheck(self, every: float) -> None:
        """Check the token again if ``every`` seconds have passed since it was last checked (a long subscription):
        raises the refusal as a GraphQL error once the key is revoked or the token has expired."""
        if time.monotonic() - self._checked_at < every:
            return
        try:
            await self.authenticate()
        except HTTPException as e:
            raise from_http(e) from None


async def get_context(connection: HTTPConnection) -> Context:
    """The context of a request (its owner resolved now) or of a WebSocket (resolved at ``connection_init``)."""
    service: Service = connection.app.state.service
    context = Context(service, bearer_token(connection.headers.get("authorization")))
    if connection.scope["type"] == "http":
        try:
            await context.authenticate()
        except HTTPException as e:
            context.refusal = e
    return context
