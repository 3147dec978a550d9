"""Joining callers' inputs under load: a lone caller goes at once, callers that wait ride together, each
gets its own outputs back, and one caller's bad input fails only that caller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dljobs.controller.services.coalescing import Coalescer, Outputs


class ModelServer:
    """Answers each call with its inputs doubled once the test lets it go; records what each call carried."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []
        self.release = asyncio.Event()

    async def send(self, inputs: list[Any]) -> Outputs:
        self.calls.append(list(inputs))
        await self.release.wait()
        if "bad" in inputs:
            raise ValueError("bad input")
        return [2 * x for x in inputs], f"call {len(self.calls)}"


LONG = 600.0  # a time budget no call here comes near


def never_alone(_: Exception) -> bool:
    return False


def test_a_lone_caller_is_sent_at_once() -> None:
    async def scenario() -> None:
        server = ModelServer()
        server.release.set()
        coalescer = Coalescer(window=1, max_inputs=8, alone_on=never_alone)
        assert await coalescer.call([1, 2], server.send, LONG) == ([2, 4], "call 1")
        assert await coalescer.call([3], server.send, LONG) == ([6], "call 2")
        assert server.calls == [[1, 2], [3]]

    asyncio.run(scenario())


async def behind_a_call(
    coalescer: Coalescer, server: ModelServer, callers: list[list[Any]], leaving: int | None = None
) -> list[asyncio.Task[Outputs]]:
    """`callers` arrive while a call of [0] fills the window (1); caller `leaving` goes away while it waits;
    then the server answers."""
    ahead = asyncio.create_task(coalescer.call([0], server.send, LONG))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(coalescer.call(inputs, server.send, LONG)) for inputs in callers]
    await asyncio.sleep(0)
    assert server.calls == [[0]]  # the window is full: the others wait
    if leaving is not None:
        tasks[leaving].cancel()
    server.release.set()
    assert await ahead == ([0], "call 1")
    return tasks


def test_callers_waiting_for_a_full_window_ride_together_and_get_their_own_outputs() -> None:
    async def scenario() -> None:
        server = ModelServer()
        coalescer = Coalescer(window=1, max_inputs=8, alone_on=never_alone)
        waiting = await behind_a_call(coalescer, server, [[10 * i, 10 * i + 1] for i in range(1, 4)])
        answers = await asyncio.gather(*waiting)
        assert server.calls == [[0], [10, 11, 20, 21, 30, 31]]
        assert answers == [([20, 22], "call 2"), ([40, 42], "call 2"), ([60, 62], "call 2")]
        assert coalescer.inflight == 0

    asyncio.run(scenario())


def test_a_joined_call_carries_at_most_max_inputs_and_a_larger_caller_goes_alone() -> None:
    async def scenario() -> None:
        server = ModelServer()
        coalescer = Coalescer(window=1, max_inputs=4, alone_on=never_alone)
        sizes = [3, 2, 6, 1]
        answers = await asyncio.gather(*await behind_a_call(coalescer, server, [[1] * n for n in sizes]))
        assert [len(call) for call in server.calls] == [1, 3, 2, 6, 1]
        assert [len(outputs) for outputs, _ in answers] == sizes

    asyncio.run(scenario())


def test_a_bad_input_fails_only_its_caller_when_failures_are_tried_alone() -> None:
    async def scenario() -> None:
        server = ModelServer()
        coalescer = Coalescer(window=1, max_inputs=8, alone_on=lambda e: isinstance(e, ValueError))
        good, bad = await behind_a_call(coalescer, server, [[5], ["bad"]])
        assert await good == ([10], "call 3")
        with pytest.raises(ValueError, match="bad input"):
            await bad
        assert server.calls == [[0], [5, "bad"], [5], ["bad"]]

    asyncio.run(scenario())


def test_other_failures_reach_every_caller_of_the_joined_call() -> None:
    async def scenario() -> None:
        server = ModelServer()
        coalescer = Coalescer(window=1, max_inputs=8, alone_on=never_alone)
        for task in await behind_a_call(coalescer, server, [[2], ["bad"]]):
            with pytest.raises(ValueError):
                await task
        assert server.calls == [[0], [2, "bad"]]

    asyncio.run(scenario())


def test_a_caller_that_goes_away_while_waiting_is_left_out() -> None:
    async def scenario() -> None:
        server = ModelServer()
        coalescer = Coalescer(window=1, max_inputs=8, alone_on=never_alone)
        gone, stays = await behind_a_call(coalescer, server, [[2], [3]], leaving=0)
        assert await stays == ([6], "call 2")
        assert server.calls == [[0], [3]]
        assert gone.cancelled()

    asyncio.run(scenario())


def test_a_waiting_caller_gives_up_at_its_time_budget_while_the_call_ahead_still_runs() -> None:
    async def scenario() -> None:
        server = ModelServer()  # answers nothing until released
        coalescer = Coalescer(window=1, max_inputs=8, alone_on=never_alone)
        ahead = asyncio.create_task(coalescer.call([1], server.send, LONG))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(coalescer.call([2], server.send, 0.05))
        done, _ = await asyncio.wait({waiting}, timeout=30)  # only ends a failing run that would hang
        assert waiting in done and isinstance(waiting.exception(), TimeoutError)
        assert not ahead.done()
        server.release.set()
        assert await ahead == ([2], "call 1")
        assert server.calls == [[1]]  # the caller that gave up was never sent

    asyncio.run(scenario())
