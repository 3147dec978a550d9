"""Per-request plumbing: the runtime, one transaction with its authenticated principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.runtime import Runtime
from dljobs.controller.services.auth import Principal, authenticate


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


@asynccontextmanager
async def transaction(request: Request) -> AsyncIterator[tuple[AsyncSession, Principal]]:
    """One transaction for the whole request, opened with the caller authenticated; commits on success."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session, session.begin():
        principal = await authenticate(session, request.headers.get("authorization"))
        yield session, principal
