"""SIGTERM on a worker (preemption): a checkpoint within the grace period, then the process exits.

Ray runs the train function in a thread; only a process's main thread may install signal handlers, so the
handler is installed through the worker actor's own task queue, which runs on the main thread. The handler
only sets a flag (and arms a timer that exits after `GRACE_S` whatever happens). Between optimizer steps the
ranks agree on the flag with one all-reduce of a single number, every `every` steps so the check costs about
one small collective per `CHECK_INTERVAL_S`; then all of them write a checkpoint at the same step, the rank
that was signalled exits as SIGTERM meant it to, and Ray Train restarts the group from that checkpoint.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

import torch

from dljobs.workloads.train.metrics import all_reduce, is_distributed

logger = logging.getLogger(__name__)

GRACE_S = 25.0  # Kubernetes gives 30 s by default between SIGTERM and SIGKILL
CHECK_INTERVAL_S = 2.0
FIRST_EPOCH_EVERY = 8

_signalled = threading.Event()


class WorkerStopping(RuntimeError):
    """Another rank was told to stop: its checkpoint is written and the worker group restarts from it."""


def _handler_factory(previous: Any) -> Any:
    def handle(signum: int, frame: FrameType | None) -> None:
        if not _signalled.is_set():
            _signalled.set()
            timer = threading.Timer(GRACE_S, os.kill, args=(os.getpid(), signal.SIGTERM))
            timer.daemon = True
            timer.start()
            return
        # Second delivery (after the checkpoint, or when the grace period ran out): what SIGTERM did before.
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        elif previous in (signal.SIG_DFL, None):
            os.kill(os.getpid(), signal.SIGTERM)

    return handle


def install_sigterm_handler() -> None:
    """Must run on the process's main thread."""
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _handler_factory(previous))


def install_on_worker() -> bool:
    """Install the handler on this Ray worker's main thread; False (and a log line) when that fails."""
    if threading.current_thread() is threading.main_thread():
        install_sigterm_handler()
        return True
    try:
        import ray

        actor = ray.get_runtime_context().current_actor
        ray.get(actor.execute.remote(install_sigterm_handler), timeout=30)
        return True
    except Exception as exc:  # a worker without the handler still trains
        logger.warning("SIGTERM checkpoints are off on this worker: %s", exc)
        return False


class PreemptionWatch:
    """Decides, identically on every rank, when to stop for a checkpoint."""

    def __init__(self) -> None:
        self.every = 1 if not is_distributed() else FIRST_EPOCH_EVERY
        self._steps = 0

    def calibrate(self, step_seconds: float) -> None:
        """Check about every CHECK_INTERVAL_S; `step_seconds` must be the same on every rank."""
        if is_distributed() and step_seconds > 0:
            self.every = max(1, int(CHECK_INTERVAL_S / step_seconds))

    def __call__(self, batches_done: int) -> bool:
        del batches_done
        self._steps += 1
        if self._steps % self.every:
            return False
        return self.stopping()

    def stopping(self) -> bool:
        if not is_distributed():
            return _signalled.is_set()
        flag = torch.tensor([1.0 if _signalled.is_set() else 0.0])
        return bool(all_reduce(flag, op="max")[0] > 0)

    @staticmethod
    def signalled_here() -> bool:
        return _signalled.is_set()

    @staticmethod
    def exit_signalled() -> None:
        """After the checkpoint: the signalled process exits the way SIGTERM would have made it."""
        if _signalled.is_set():
            os.kill(os.getpid(), signal.SIGTERM)
