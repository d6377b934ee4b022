"""GraphQL beside REST: ``/graphql`` (Strawberry) on the same service layer, auth, limits and guards.

REST (``/api/v1``) stays the primary API; this package only adapts it. Queries and mutations call the REST route
functions themselves (``routes/generations.py``), so a limit, a quota, a check or a side effect (the worker's
cancel, the event bus, storage clean-up) is written once and holds for both; subscriptions read the same event
bus as the REST WebSockets (``routes/events.py``). Field names are the REST API's (``cfg_coef``, ``next_cursor``):
one vocabulary from the database to every API.

- ``types.py``: the GraphQL shapes of a generation, a page, an event, the create input.
- ``errors.py``: every failure as a GraphQL error with a message and a code; nothing unexpected leaks.
- ``resolvers.py``: queries and mutations; ``subscriptions.py``: one job's events and all of a caller's jobs.
- ``router.py``: the schema, its bounds (depth, tokens, aliases), who is asking, the ``/graphql`` router.
"""

from __future__ import annotations

from soundgen.service.gql.router import graphql_router

__all__ = ["graphql_router"]
