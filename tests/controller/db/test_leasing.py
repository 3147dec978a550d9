"""The planning lock (db.leasing.serialize): transactions that take it run one at a time, on both
databases."""

from __future__ import annotations

import asyncio

from dljobs.controller.db.engine import create_engine, session_factory
from dljobs.controller.db.leasing import serialize

HELD_FOR = 0.5  # seconds the first transaction keeps the lock after the second one asked for it


async def _order_of_two_planners(url: str) -> list[str]:
    engines = [create_engine(url), create_engine(url)]
    first, second = (session_factory(engine) for engine in engines)
    order: list[str] = []

    async def plan_second() -> None:
        async with second() as session, session.begin():
            await serialize(session, "scheduler")
            order.append("second planned")

    try:
        async with first() as session, session.begin():
            await serialize(session, "scheduler")
            waiting = asyncio.create_task(plan_second())
            await asyncio.sleep(HELD_FOR)
            order.append("first committed")
        await waiting
    finally:
        for engine in engines:
            await engine.dispose()
    return order


def test_a_second_planner_waits_for_the_first_to_commit(clean_database: str) -> None:
    assert asyncio.run(_order_of_two_planners(clean_database)) == ["first committed", "second planned"]
