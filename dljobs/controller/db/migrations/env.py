"""Alembic environment: runs migrations through the same async engine the controller uses."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from dljobs.controller.db import models  # noqa: F401  (registers the tables)
from dljobs.controller.db.base import Base
from dljobs.controller.db.engine import create_engine
from dljobs.controller.db.leasing import advisory_lock

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    # The whole upgrade is one transaction, begun before Alembic reads the version table, so controllers
    # (and API processes) starting at once on a new database migrate one at a time: the others wait, then
    # find it at head. SQLite: the engine's BEGIN IMMEDIATE takes the write lock (Alembic alone would commit
    # after each migration there); PostgreSQL: an advisory lock.
    if connection.dialect.name == "postgresql":
        connection.execute(advisory_lock("migrations"))
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
