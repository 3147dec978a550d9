"""The controller in a process of its own (`python -m dljobs.controller`), so a test can SIGKILL it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dljobs.controller.ray_head import free_port
from dljobs.processes import stop_popen_group

# A safeguard against a hang, not a performance check.
START_LIMIT = 120.0


class ControllerProcess:
    """One controller process; `settings` are DLJOBS_* variables (nested keys joined by `__`)."""

    def __init__(self, settings: dict[str, str], log_file: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **settings,
            "DLJOBS_MODE": "cluster",
            "DLJOBS_SERVER__PORT": str(self.port),
        }
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> ControllerProcess:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dljobs.controller", "--log-level", "warning"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + START_LIMIT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the controller exited with {self.process.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/api/v1/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the controller did not become ready: {self.log()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_popen_group(self.process)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""


def controller_env(database_url: str, ray_head: object, home: Path, admin_token: str) -> dict[str, str]:
    """DLJOBS_* settings of a cluster-mode controller on `database_url` and the given Ray head."""
    return {
        "DLJOBS_HOME": str(home),
        "DLJOBS_DATABASE__URL": database_url,
        "DLJOBS_RAY__ADDRESS": ray_head.dashboard_url,  # type: ignore[attr-defined]
        "DLJOBS_RAY__TOKEN": ray_head.token,  # type: ignore[attr-defined]
        "DLJOBS_STORAGE__URL": (home / "artifacts").as_uri(),
        "DLJOBS_AUTH__BOOTSTRAP_ADMIN_TOKEN": admin_token,
        "DLJOBS_SCHEDULER__INTERVAL": "0.2",
        "DLJOBS_SCHEDULER__CAPACITY_TTL": "0.5",
        "DLJOBS_RECONCILER__INTERVAL": "0.5",
    }
