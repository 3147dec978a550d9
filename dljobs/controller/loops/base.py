"""A loop that ticks every `interval` seconds, or at once when woken, and drains on stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dljobs.controller.telemetry import ControllerMetrics

log = logging.getLogger("dljobs.loops")


class Loop(ABC):
    name = "loop"

    def __init__(self, interval: float, enabled: bool = True) -> None:
        self.interval = interval
        self.enabled = enabled
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.last_duration = 0.0
        self.last_error: str | None = None
        self.metrics: ControllerMetrics | None = None  # set by the runtime

    @abstractmethod
    async def tick(self) -> None:
        """One pass of the loop's work."""

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"dljobs-{self.name}")

    async def stop(self) -> None:
        """Let the tick in progress finish, then end."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=30)
            except TimeoutError:
                self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            started = time.monotonic()
            try:
                await self.tick()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failing tick must not end the loop: log it and try again
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("%s tick failed", self.name)
            self.ticks += 1
            self.last_duration = time.monotonic() - started
            if self.metrics is not None:
                self.metrics.loop_duration.labels(self.name).observe(self.last_duration)
                if self.last_error is not None:
                    self.metrics.loop_errors.labels(self.name).inc()
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
