"""Queries and mutations: each calls the REST route function of the same operation (routes/generations.py).

So a generation made here is checked, limited, counted against the key's quota, queued and announced exactly as a
POST to ``/api/v1/generations`` is; a cancel reaches the worker, a delete removes the files. A refusal is the
route's ``HTTPException``; errors.py turns it into a GraphQL error with the same sentence.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import strawberry
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response
from strawberry.types import Info

from soundgen.service.gql.errors import ApiError
from soundgen.service.gql.types import Generation, GenerationInput, GenerationPage, GenerationState
from soundgen.service.routes import generations as rest

if TYPE_CHECKING:
    from soundgen.service.core import Service
    from soundgen.service.gql.context import Context

# The bounds of the REST listing's query parameters (GET /api/v1/generations: limit 1-100, q at most 200
# characters); tests/service/test_graphql.py checks that both APIs draw the line at the same place.
LIST_LIMIT_MAX = 100
QUERY_CHARS_MAX = 200


def _context(info: Info[Any, Any]) -> Context:
    context: Context = info.context
    return context


def _body(response: Response) -> dict[str, Any]:
    """The JSON body of a route's answer."""
    body: dict[str, Any] = json.loads(bytes(response.body))
    return body


def _page(service: Service, owner: str, limit: int, cursor: str | None, states: list[str] | None,
          q: str | None) -> GenerationPage:
    with service.db.session() as session:
        page = rest.list_generations(session, owner, service, limit=limit, cursor=cursor, state=states, q=q)
    return GenerationPage(items=[Generation.from_json(j.model_dump()) for j in page.items],
                          next_cursor=page.next_cursor)


@strawberry.type(description="Read your generations (REST: GET /api/v1/generations...).")
class Query:
    @strawberry.field(description="One of your generations, with progress and result links.")
    async def generation(self, info: Info[Any, Any], id: strawberry.ID) -> Generation:
        ctx = _context(info)
        return Generation.from_json(_body(await rest.get_generation(str(id), ctx.service, ctx.owner)))

    @strawberry.field(description="Your generations, newest first: filter by states and by prompt text q; pass a "
                                  "page's next_cursor as cursor for the next page.")
    async def generations(self, info: Info[Any, Any], limit: int = 20, cursor: str | None = None,
                          states: list[GenerationState] | None = None, q: str | None = None) -> GenerationPage:
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ApiError(f"limit: {limit} is out of range; ask for 1 to {LIST_LIMIT_MAX} generations a page",
                           "BAD_USER_INPUT", status=422)
        if q is not None and len(q) > QUERY_CHARS_MAX:
            raise ApiError(f"q: {len(q)} characters is too long; the limit is {QUERY_CHARS_MAX}", "BAD_USER_INPUT",
                           status=422)
        ctx = _context(info)
        names = [s.value for s in states] if states else None
        return await run_in_threadpool(_page, ctx.service, ctx.owner, limit, cursor, names, q)


@strawberry.type(description="Queue, cancel and delete generations (REST: POST and DELETE /api/v1/generations...).")
class Mutation:
    @strawberry.mutation(description="Queue a generation. Send an idempotency_key to make retries safe (same key, "
                                      "same job), as REST's Idempotency-Key header.")
    async def create_generation(self, info: Info[Any, Any], input: GenerationInput,
                                idempotency_key: str | None = None) -> Generation:
        ctx = _context(info)
        problems = rest.key_errors(idempotency_key)
        if problems:
            raise ApiError(f"idempotency_key: {problems[0]['msg']}", "BAD_USER_INPUT", status=422)
        response = await rest._submit(ctx.service, ctx.owner, input.request(), idempotency_key)
        return Generation.from_json(_body(response))

    @strawberry.mutation(description="Cancel: a queued job at once, a running one at its next step; an error "
                                     "(CONFLICT) when it has already ended.")
    async def cancel_generation(self, info: Info[Any, Any], id: strawberry.ID) -> Generation:
        ctx = _context(info)
        job = await run_in_threadpool(rest.cancel_generation, str(id), ctx.service, ctx.owner)
        return Generation.from_json(job.model_dump())

    @strawberry.mutation(description="Delete a generation and its files (a running one is stopped first); "
                                     "returns its id.")
    async def delete_generation(self, info: Info[Any, Any], id: strawberry.ID) -> strawberry.ID:
        ctx = _context(info)
        await run_in_threadpool(rest.delete_generation, str(id), ctx.service, ctx.owner)
        return id

    @strawberry.mutation(description="Queue a new generation with the same prompt and options (and audio, for a "
                                     "continuation) as one of yours, and a new random seed.")
    async def create_variation(self, info: Info[Any, Any], id: strawberry.ID) -> Generation:
        ctx = _context(info)
        return Generation.from_json(_body(await rest.create_variation(str(id), ctx.service, ctx.owner)))
