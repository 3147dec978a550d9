"""The installation's id: made once, on first use, and kept in the database."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dljobs.controller.db.models import MetaModel

INSTALLATION_KEY = "installation_id"


async def installation_id(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as session:
        row = await session.get(MetaModel, INSTALLATION_KEY)
        if row is not None:
            return row.value
    try:
        async with sessions() as session, session.begin():
            session.add(MetaModel(key=INSTALLATION_KEY, value=secrets.token_hex(4)))
    except IntegrityError:
        pass  # another controller made it first
    async with sessions() as session:
        row = await session.get(MetaModel, INSTALLATION_KEY)
        assert row is not None
        return row.value
