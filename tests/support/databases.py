"""The two databases every API test runs on: SQLite (embedded) and PostgreSQL (cluster).

One migrated database per backend for the session; tables are emptied between tests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from dljobs.controller.db.base import Base
from dljobs.controller.db.engine import create_engine, is_sqlite
from dljobs.controller.db.migrate import upgrade
from tests.support.postgres import create_database


def migrated_database(backend: str, tmp: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp / 'dljobs.db'}" if backend == "sqlite" else create_database()
    upgrade(url)
    return url


def empty_tables(url: str) -> None:
    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
                if is_sqlite(url):
                    for name in tables:
                        await connection.execute(text(f'DELETE FROM "{name}"'))
                    await connection.execute(text("DELETE FROM sqlite_sequence"))
                else:
                    joined = ", ".join(f'"{n}"' for n in tables)
                    await connection.execute(text(f"TRUNCATE {joined} RESTART IDENTITY CASCADE"))
        finally:
            await engine.dispose()

    asyncio.run(run())
