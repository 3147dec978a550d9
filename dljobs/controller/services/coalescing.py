"""Predictions for one Serve application, joined under load: a caller's inputs go out at once while fewer
than `window` calls are in flight; callers arriving meanwhile wait, and the next call carries all their
inputs together (up to `max_inputs`). One request through Serve's proxy and replica then answers many
callers, which is where the time of a small model goes; a lone caller never waits.

A joined call that fails on something one caller's inputs may have caused (the predicate `alone_on`) is
made again for each caller alone, so a bad input fails only its own request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Outputs = tuple[list[Any], Any]  # one output per input, and who answered
Send = Callable[[list[Any]], Awaitable[Outputs]]


@dataclass
class _Waiting:
    inputs: list[Any]
    future: asyncio.Future[Outputs]


class Coalescer:
    def __init__(self, window: int, max_inputs: int, alone_on: Callable[[Exception], bool]) -> None:
        self.window = window
        self.max_inputs = max_inputs
        self.alone_on = alone_on
        self.inflight = 0
        self._waiting: deque[_Waiting] = deque()
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, inputs: list[Any], send: Send, timeout: float) -> Outputs:
        """`send(inputs)` answers one output per input; every caller of one coalescer sends alike.
        TimeoutError after `timeout` seconds, time spent waiting for a call included."""
        async with asyncio.timeout(timeout):
            if self.inflight < self.window and not self._waiting:
                self.inflight += 1
                try:
                    return await send(inputs)
                finally:
                    self.inflight -= 1
                    self._start_waiting(send)
            future: asyncio.Future[Outputs] = asyncio.get_running_loop().create_future()
            self._waiting.append(_Waiting(inputs, future))
            return await future

    def _start_waiting(self, send: Send) -> None:
        while self.inflight < self.window and self._waiting:
            batch, size = [], 0
            while self._waiting:
                waiting = self._waiting[0]
                if waiting.future.done():  # its caller went away
                    self._waiting.popleft()
                    continue
                if batch and size + len(waiting.inputs) > self.max_inputs:
                    break
                batch.append(self._waiting.popleft())
                size += len(waiting.inputs)
            if not batch:
                return
            self.inflight += 1
            task = asyncio.create_task(self._send_joined(batch, send))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_joined(self, batch: list[_Waiting], send: Send) -> None:
        try:
            joined = [item for waiting in batch for item in waiting.inputs]
            try:
                outputs, by = await send(joined)
            except Exception as exc:
                if len(batch) > 1 and self.alone_on(exc):
                    await asyncio.gather(*(self._send_alone(waiting, send) for waiting in batch))
                else:
                    for waiting in batch:
                        _settle(waiting, error=exc)
                return
            start = 0
            for waiting in batch:
                end = start + len(waiting.inputs)
                _settle(waiting, result=(outputs[start:end], by))
                start = end
        except BaseException:
            for waiting in batch:
                waiting.future.cancel()
            raise
        finally:
            self.inflight -= 1
            self._start_waiting(send)

    @staticmethod
    async def _send_alone(waiting: _Waiting, send: Send) -> None:
        try:
            _settle(waiting, result=await send(waiting.inputs))
        except Exception as exc:
            _settle(waiting, error=exc)


def _settle(waiting: _Waiting, *, result: Outputs | None = None, error: Exception | None = None) -> None:
    if waiting.future.done():
        return
    if error is not None:
        waiting.future.set_exception(error)
    else:
        assert result is not None
        waiting.future.set_result(result)
