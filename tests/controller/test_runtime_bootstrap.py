"""Controllers starting together on a new database each bootstrap the same admin: all of them start."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from dljobs.controller.db.engine import create_engine, session_factory
from dljobs.controller.db.models import TokenModel, UserModel
from dljobs.controller.runtime import bootstrap_admin

TOKEN = "dlj_bootstrap-race-token-00000000000000000000"


def test_concurrent_bootstraps_make_one_admin(clean_database: str) -> None:
    async def run() -> tuple[int, int]:
        engines = [create_engine(clean_database) for _ in range(4)]
        try:
            await asyncio.gather(
                *(bootstrap_admin(session_factory(e), "admin", TOKEN, "bootstrap") for e in engines)
            )
            async with session_factory(engines[0])() as session:
                users = await session.scalar(select(func.count()).select_from(UserModel))
                tokens = await session.scalar(select(func.count()).select_from(TokenModel))
            return users or 0, tokens or 0
        finally:
            for engine in engines:
                await engine.dispose()

    assert asyncio.run(run()) == (1, 1)
