"""The embedded default: a local controller (SQLite, a Ray head it owns, artifacts under DLJOBS_HOME),
started as a background process by `dljobs up` (or the first `dljobs submit`) and stopped by `dljobs down`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from dljobs.client.errors import ConnectionFailed
from dljobs.processes import alive, stop_group
from dljobs.spec.api import API_PREFIX
from dljobs.spec.local import RAY_HEAD_PID_FILE, SERVER_FILE, SERVER_LOG, TOKEN_FILE, dljobs_home

DEFAULT_PORT = 8765


@dataclass(frozen=True)
class LocalServer:
    url: str
    pid: int
    home: Path

    def token(self) -> str | None:
        path = self.home / TOKEN_FILE
        return path.read_text().strip() if path.exists() else None


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}{API_PREFIX}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def running(home: Path | None = None) -> LocalServer | None:
    """The local controller, if one is running and answering."""
    home = home or dljobs_home()
    path = home / SERVER_FILE
    if not path.exists():
        return None
    try:
        info = json.loads(path.read_text())
        server = LocalServer(str(info["url"]), int(info["pid"]), home)
    except (ValueError, KeyError, TypeError):
        return None
    if alive(server.pid) and _healthy(server.url):
        return server
    return None


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(home: Path | None = None, port: int = DEFAULT_PORT, timeout: float = 90.0) -> LocalServer:
    """Start the local controller in the background and wait until its API answers."""
    home = home or dljobs_home()
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    existing = running(home)
    if existing is not None:
        return existing
    _stop_leftover_ray_head(home)
    port = _pick_port(port)
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DLJOBS_HOME": str(home),
        "DLJOBS_MODE": "embedded",
        "DLJOBS_SERVER__HOST": "127.0.0.1",
        "DLJOBS_SERVER__PORT": str(port),
        # the Ray head started by the controller must find this Python first (and so dljobs)
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }
    for name in ("DLJOBS_URL", "DLJOBS_TOKEN"):
        env.pop(name, None)
    with open(home / SERVER_LOG, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dljobs.controller"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (home / SERVER_FILE).write_text(json.dumps({"url": url, "pid": process.pid}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            (home / SERVER_FILE).unlink(missing_ok=True)
            raise ConnectionFailed(
                f"the local dljobs server exited (code {process.returncode}); see {home / SERVER_LOG}"
            )
        if _healthy(url):
            return LocalServer(url, process.pid, home)
        time.sleep(0.2)
    stop(home)
    raise ConnectionFailed(
        f"the local dljobs server did not answer within {timeout:.0f}s; see {home / SERVER_LOG}"
    )


def stop(home: Path | None = None, timeout: float = 60.0) -> bool:
    """Stop the local controller (which stops its Ray head). Returns False when nothing was running."""
    home = home or dljobs_home()
    path = home / SERVER_FILE
    stopped = False
    if path.exists():
        try:
            pid = int(json.loads(path.read_text())["pid"])
        except (ValueError, KeyError, TypeError):
            pid = 0
        if pid:
            stopped = stop_group(pid, timeout)
        path.unlink(missing_ok=True)
    return _stop_leftover_ray_head(home) or stopped


def _stop_leftover_ray_head(home: Path) -> bool:
    """A Ray head left behind by a controller that was killed: stop its process group."""
    path = home / RAY_HEAD_PID_FILE
    if not path.exists():
        return False
    try:
        pid = int(path.read_text().strip())
    except ValueError:
        pid = 0
    found = bool(pid) and stop_group(pid)
    path.unlink(missing_ok=True)
    return found
