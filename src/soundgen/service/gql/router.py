"""``/graphql``: the schema with its bounds, who is asking, and the router the app mounts.

Who is asking is decided as on REST (``deps.resolve_owner``: an API key, or an OIDC token of the configured
issuer; nobody needs one on a loopback server without auth):

- over HTTP from the ``Authorization: Bearer`` header, before anything runs: a missing or refused key is answered
  with the REST status (401 with its ``WWW-Authenticate`` challenge, 503 when the issuer cannot be reached) and a
  GraphQL error body;
- over WebSocket (graphql-transport-ws) from the ``connection_init`` payload ``{"Authorization": "Bearer <key>"}``
  (browsers cannot set headers on a WebSocket), or the upgrade's own header; a refusal closes the socket as the REST
  WebSockets do (4401, 1013 when the issuer cannot be reached) with the reason. Subscriptions check the key again
  every few seconds, so a revoked key ends them.

The request guard in front of the app (service/guard.py) applies here as everywhere: a cross-site POST or
WebSocket is refused (403/4403), a POST must be ``application/json`` (415) within the body limit (413), and the
Host must be this server's (421). Queries are not taken over GET and there is no in-browser IDE (it would load
scripts from a CDN), so every request to ``/graphql`` is a guarded POST or WebSocket.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import strawberry
from cross_web import HTTPException as UnreadableRequest
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.fastapi import GraphQLRouter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.config import StrawberryConfig
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType
from strawberry.utils.logging import StrawberryLogger

from soundgen.service.deps import bearer_token
from soundgen.service.gql.context import Context, get_context
from soundgen.service.gql.errors import ApiError, ApiErrors, from_http, is_expected
from soundgen.service.gql.resolvers import Mutation, Query
from soundgen.service.gql.subscriptions import Subscription

PATH = "/graphql"
# Bounds of one document. The deepest useful selection (an event's generation's results' downloads' url) is 5 deep
# and graphql-core's full introspection query is about 160 tokens; these leave room for tools, fragments and
# comments, and stop a document that nests or repeats itself into a denial of service before it runs. (The schema
# has no cycles, so depth is bounded anyway; the limit holds if one is ever added.)
MAX_DEPTH = 8
MAX_TOKENS = 2000
MAX_ALIASES = 15


class _Adapter(ASGIWebSocketAdapter):
    """Strawberry's WebSocket adapter, except that closing a socket already closed does nothing (a refused
    ``connection_init`` is closed with the reason before Strawberry closes it again with a bare 4403)."""

    async def close(self, code: int, reason: str) -> None:
        if self.ws.application_state != WebSocketState.DISCONNECTED:
            await super().close(code, reason)


class _TransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler, quiet about a client that went away while a subscription was
    still sending (closing a socket mid-stream is how clients stop listening; it is not a server error)."""

    async def handle_task_exception(self, error: Exception) -> None:
        if not isinstance(error, WebSocketDisconnected):
            await super().handle_task_exception(error)


class SoundgenGraphQLRouter(GraphQLRouter[Context, None]):
    """Strawberry's FastAPI router with soundgen's authentication (see the module's docstring)."""

    websocket_adapter_class = _Adapter  # type: ignore[assignment]
    graphql_transport_ws_handler_class = _TransportWS

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Answer a refused token before any GraphQL runs (HTTP), and a request Strawberry cannot read (not JSON,
        no query, a GET) with a GraphQL error body; otherwise as Strawberry does."""
        if not isinstance(request, Request):
            return await super().run(request, context=context, root_value=root_value)
        if isinstance(context, Context) and context.refusal is not None:
            return refusal_response(context.refusal)
        try:
            return await super().run(request, context=context, root_value=root_value)
        except UnreadableRequest as e:
            return refusal_response(HTTPException(e.status_code, e.reason), code="BAD_REQUEST")

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket at ``connection_init``; close it with the reason when refused."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = next((v for k, v in params.items() if k.lower() == "authorization" and isinstance(v, str)), None)
        if header is not None:
            context.token = bearer_token(header) or header.strip() or None
        try:
            await context.authenticate()
        except HTTPException as e:
            ws = context.request
            assert isinstance(ws, WebSocket)
            code = 4401 if e.status_code == 401 else 1013  # as the REST WebSockets close
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the client may be gone already
                await ws.close(code=code, reason=_close_reason(str(e.detail)))
            raise ConnectionRejectionError from None
        return UNSET


def _close_reason(text: str) -> str:
    """``text`` cut to what a close frame can carry (123 bytes of UTF-8)."""
    data = text.encode()
    return text if len(data) <= 123 else data[:120].decode(errors="ignore") + "..."


def refusal_response(e: HTTPException, code: str | None = None) -> Response:
    """The answer to a request refused before any GraphQL runs (a missing or refused token, a body that is not a
    GraphQL request): the REST status and challenge, and a GraphQL error body (``code``: its code, if not the
    status's)."""
    error = from_http(e).formatted
    if code is not None:
        error["extensions"] = {**error.get("extensions", {}), "code": code}
    body = {"data": None, "errors": [error]}
    return JSONResponse(body, status_code=e.status_code, headers=e.headers)


class _SubscriptionsOverWebSocket(SchemaExtension):
    """Refuse a subscription sent over HTTP with the reason (it would otherwise run as a query and fail)."""

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if not isinstance(getattr(ctx.context, "request", None), WebSocket) and ctx.pre_execution_errors is None:
            try:
                subscription = ctx.operation_type is OperationType.SUBSCRIPTION
            except RuntimeError:  # no single operation to run: validation says so in its own words
                subscription = False
            if subscription:  # set before validation runs: it is then skipped, and this is the answer
                ctx.pre_execution_errors = [ApiError(
                    f"subscriptions are served over WebSocket: connect to {PATH} with the graphql-transport-ws "
                    "protocol", "BAD_REQUEST")]
        yield


class _Schema(strawberry.Schema):
    """The schema, logging only the errors that are bugs (a refused request is the client's, not the log's)."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            if not is_expected(error):
                StrawberryLogger.error(error, execution_context)


def build_schema() -> strawberry.Schema:
    """The schema of ``/graphql``: REST's field names (no camelCase), bounded documents, REST's errors."""
    return _Schema(query=Query, mutation=Mutation, subscription=Subscription,
                   config=StrawberryConfig(auto_camel_case=False),
                   extensions=[ApiErrors, _SubscriptionsOverWebSocket,
                               functools.partial(QueryDepthLimiter, max_depth=MAX_DEPTH),
                               functools.partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
                               functools.partial(MaxAliasesLimiter, max_alias_count=MAX_ALIASES)])


def graphql_router(cors_origins: list[str]) -> GraphQLRouter[Context, None]:
    """The ``/graphql`` router (POST and graphql-transport-ws); ``cors_origins``: other origins whose pages may
    open its WebSocket (the guard refuses the rest first)."""
    return SoundgenGraphQLRouter(build_schema(), path=PATH, graphql_ide=None, allow_queries_via_get=False,
                                 context_getter=get_context, subscription_protocols=["graphql-transport-ws"],
                                 allowed_origins=cors_origins, include_in_schema=False)
