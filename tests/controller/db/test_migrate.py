"""Migrations: several controllers (or API processes) starting at once on a new database all come up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from dljobs.controller.db.engine import create_engine
from dljobs.controller.db.migrate import head_revision
from tests.support.postgres import create_database, drop_database

STARTING_AT_ONCE = 4


@pytest.fixture(params=["sqlite", "postgres"])
def new_database(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
        return
    url = create_database("dljobs_migrate")
    try:
        yield url
    finally:
        drop_database(url)


def test_controllers_starting_at_once_on_a_new_database_all_migrate_it(new_database: str) -> None:
    # Each process imports first, then waits for the same moment, so that they all read the empty database.
    start = time.time() + 5.0
    code = (
        "import time; from dljobs.controller.db.migrate import upgrade; "
        f"time.sleep(max(0.0, {start} - time.time())); upgrade({new_database!r})"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
        for _ in range(STARTING_AT_ONCE)
    ]
    errors = [(p.communicate()[1], p.returncode) for p in processes]
    failures = [stderr for stderr, code in errors if code != 0]
    assert not failures, failures[0][-2000:]
    assert asyncio.run(_versions(new_database)) == [head_revision()]


async def _versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    finally:
        await engine.dispose()
