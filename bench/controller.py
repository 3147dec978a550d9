"""A controller process for the benchmarks: `python -m dljobs.controller` with DLJOBS_* settings."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx


def launch_controller(env: dict[str, str], home: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start it (its stderr in HOME/server.log) and wait until its API answers."""
    with open(home / "server.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dljobs.controller", "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"the controller did not start; see {home / 'server.log'}")
