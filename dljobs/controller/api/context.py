"""Per-request plumbing: the runtime, the authenticated principal, and one transaction per request.

Authentication is a router dependency, so it runs before the body is read or validated: a caller without
a valid token learns nothing, not even whether their body would have been valid.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.runtime import Runtime
from dljobs.controller.services.auth import Principal


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def authenticated(request: Request) -> Principal:
    """The router dependency: 401 before anything else for a missing, malformed or unknown token."""
    runtime = runtime_of(request)
    principal = await runtime.principals.authenticate(runtime.sessions, request.headers.get("authorization"))
    request.state.principal = principal
    return principal


@asynccontextmanager
async def transaction(
    request: Request, *, one_write: bool = False
) -> AsyncIterator[tuple[AsyncSession, Principal]]:
    """One transaction for the route, with the principal the router dependency authenticated.

    `one_write`: the route writes in a single statement (after any reads), which on PostgreSQL then commits
    by itself: no BEGIN and COMMIT round trips."""
    runtime = runtime_of(request)
    principal: Principal = request.state.principal
    sessions = runtime.autocommit_sessions if one_write else runtime.sessions
    async with sessions() as session, session.begin():
        yield session, principal
