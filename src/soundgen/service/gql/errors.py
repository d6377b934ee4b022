"""Failures as GraphQL errors: the REST API's sentence as the message, and a code in ``extensions``.

Resolvers let the REST side's exceptions through (an ``HTTPException`` with its status and sentence, a pydantic
``ValidationError``, a ``SoundgenError``, a database that cannot be used); :class:`ApiErrors` turns each into a
GraphQL error with the same words. Anything else is a bug: its message is replaced by a generic one (the server's
log has the traceback), so no internal detail ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from graphql import GraphQLError
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from strawberry.extensions import MaskErrors

from soundgen.errors import SoundgenError
from soundgen.service.db import DatabaseUnavailableError

log = logging.getLogger(__name__)
INTERNAL = "internal error: the server could not answer this; its log has the details"
# The codes of the REST statuses (Apollo's names where it has one).
CODES: dict[int, str] = {
    400: "BAD_USER_INPUT", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE", 422: "BAD_USER_INPUT", 429: "RATE_LIMITED", 503: "UNAVAILABLE",
}


class ApiError(GraphQLError):
    """An error a client can act on: ``message`` says what and what to do, ``code`` what kind (``NOT_FOUND``...)."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})


def from_http(e: HTTPException) -> ApiError:
    """The error of a REST refusal: its sentence, its status as ``status``, and its ``Retry-After`` if any."""
    extra: dict[str, Any] = {"status": e.status_code}
    retry = (e.headers or {}).get("Retry-After")
    if retry is not None and retry.isdigit():
        extra["retry_after"] = int(retry)
    return ApiError(str(e.detail), CODES.get(e.status_code, "BAD_REQUEST"), **extra)


def validation_message(errors: Any) -> str:
    """pydantic's errors as the REST API words them: ``"duration: Input should be greater than 0; ..."``."""
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'input'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def api_error(exc: BaseException) -> ApiError | None:
    """The GraphQL error of an exception the REST API answers with a status; None for any other (a bug)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, HTTPException):
        return from_http(exc)
    if isinstance(exc, ValidationError | RequestValidationError):
        return ApiError(validation_message(exc.errors()), "BAD_USER_INPUT", status=422)
    if isinstance(exc, DatabaseUnavailableError):
        return ApiError(str(exc), "UNAVAILABLE", status=503, retry_after=30)
    if isinstance(exc, OperationalError):
        return ApiError(f"the database cannot be used right now: {exc.orig}", "UNAVAILABLE", status=503,
                        retry_after=30)
    if isinstance(exc, SoundgenError):
        return ApiError(str(exc), "BAD_USER_INPUT", status=400)
    return None


def is_expected(error: GraphQLError) -> bool:
    """Whether ``error`` is one a client caused or can act on (not worth a traceback in the log).

    Parse, validation and variable errors (no path) are graphql-core's own words about the document.
    """
    return error.original_error is None or error.path is None or api_error(error.original_error) is not None


class ApiErrors(MaskErrors):
    """Every resolver error as an :class:`ApiError` where the REST API would refuse the same, else masked."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: e.original_error is not None and e.path is not None,
                         error_message=INTERNAL)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        """The error a client sees for a resolver's ``error``: its REST words, or the generic message."""
        assert error.original_error is not None
        known = api_error(error.original_error)
        if known is None:
            return GraphQLError(INTERNAL, nodes=error.nodes, path=error.path,
                                extensions={"code": "INTERNAL_SERVER_ERROR"})
        return GraphQLError(known.message, nodes=error.nodes, path=error.path, extensions=known.extensions)
