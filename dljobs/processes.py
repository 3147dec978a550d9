"""Process groups of the local stack (the controller, a Ray head): liveness checks and stopping.

A leaf module (standard library only) shared by the CLI and the controller.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group that `pid` leads (or belongs to)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), sig)


def stop_group(pid: int, timeout: float = 30.0) -> bool:
    """SIGTERM the group of `pid`, wait up to `timeout` for `pid` to exit, then SIGKILL the group.
    Returns False when the process was not running."""
    if not alive(pid):
        return False
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    return True


def stop_popen_group(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Like stop_group for a child we started: also reaps it."""
    if process.poll() is None:
        try:
            pgid = os.getpgid(process.pid)
        except ProcessLookupError:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
