"""A local Ray head, started and owned by one process (the embedded controller, or a test session).

Every port is picked free and the head gets its own temp dir, so several heads can share a machine; the
head runs `ray start --block` in its own process group and is stopped by signalling that group, never by
`ray stop` (which would stop every Ray on the machine).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dljobs.processes import stop_popen_group

_PORT_FLAGS = (
    "--port",
    "--dashboard-port",
    "--ray-client-server-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--metrics-export-port",
    "--runtime-env-agent-port",
    "--node-manager-port",
    "--object-manager-port",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_executable() -> str:
    return (
        shutil.which("ray", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        or "ray"
    )


class HeadExited(RuntimeError):
    """The head's process ended before the head was up."""


@dataclass
class LocalRayHead:
    """`start()` returns once the head's Job API answers; `stop()` ends it and everything it started."""

    num_cpus: int | None = None
    num_gpus: int | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    log_file: Path | None = None
    temp_dir: Path | None = None
    port: int = 0
    dashboard_port: int = 0
    pid_file: Path | None = None  # the head's process group, written as soon as it starts (crash cleanup)
    process: subprocess.Popen[bytes] | None = None
    _owned_temp: bool = False

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def env(self) -> dict[str, str]:
        """Environment for processes that talk to this head (ray.init, `ray start --address`)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def _process_env(self) -> dict[str, str]:
        # Stopping is our decision, made once the jobs are dealt with: no drain period on SIGTERM.
        # RAY_ADDRESS: every process of this cluster (drivers, actors, Ray Train's own helpers) talks to
        # this head, even when other Ray clusters run on the same machine.
        return {
            **os.environ,
            **self.env(),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            "RAY_ADDRESS": self.gcs_address,
        }

    def start(self, timeout: float = 120.0, attempts: int = 2) -> LocalRayHead:
        """Start the head; one that exits while starting is started again, on the ports it was given and
        others picked anew: on a loaded machine `ray start` gives up when its raylet registers late, or finds
        a port picked for it taken by then."""
        given = self.port, self.dashboard_port  # kept; ports picked here are picked again
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except HeadExited:
                self.stop()
                if attempt == attempts:
                    raise
                self.port, self.dashboard_port = given
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> LocalRayHead:
        ports = {flag: free_port() for flag in _PORT_FLAGS}
        if self.port:
            ports["--port"] = self.port
        if self.dashboard_port:
            ports["--dashboard-port"] = self.dashboard_port
        self.port, self.dashboard_port = ports["--port"], ports["--dashboard-port"]
        if self.temp_dir is None:
            # Ray's socket paths must stay short: a short directory under /tmp.
            self.temp_dir = Path(tempfile.mkdtemp(prefix="dlr", dir="/tmp"))
            self._owned_temp = True
        command = [
            ray_executable(),
            "start",
            "--head",
            "--block",
            "--disable-usage-stats",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={self.temp_dir}",
            # worker ports picked by the OS, not from a fixed range another head may hold
            "--min-worker-port=0",
            "--max-worker-port=0",
            *(f"{flag}={port}" for flag, port in ports.items()),
        ]
        if self.num_cpus is not None:
            command.append(f"--num-cpus={self.num_cpus}")
        if self.num_gpus is not None:
            command.append(f"--num-gpus={self.num_gpus}")
        env = self._process_env()
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        if self.pid_file is not None:
            self.pid_file.write_text(f"{self.process.pid}\n")
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Until the head's node is alive: the Job API accepts submissions only from then on."""
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.token}"}
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise HeadExited(
                    f"the Ray head exited with code {self.process.returncode}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            try:
                response = httpx.get(f"{self.dashboard_url}/api/v0/nodes", headers=headers, timeout=5.0)
                if response.status_code == 200:
                    nodes = response.json().get("data", {}).get("result", {}).get("result", [])
                    if any(node.get("state") == "ALIVE" for node in nodes):
                        return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"the Ray head did not answer within {timeout:.0f}s")

    def add_node(self, num_cpus: int = 1, log_file: Path | None = None) -> subprocess.Popen[bytes]:
        """Start a second node joined to this head, in its own process group (stop it with stop_node)."""
        command = [
            ray_executable(),
            "start",
            "--block",
            f"--address={self.gcs_address}",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={num_cpus}",
            "--disable-usage-stats",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
        ]
        log = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            return subprocess.Popen(
                command,
                env=self._process_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None:
            stop_popen_group(self.process, timeout)
            self.process = None
        if self._owned_temp and self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
