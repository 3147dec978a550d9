"""Files of the embedded default under DLJOBS_HOME, shared by the CLI (which starts and stops the local
controller) and the controller (which writes its token and its Ray head's process id)."""

from __future__ import annotations

import os
from pathlib import Path

TOKEN_FILE = "token"  # the local admin token, readable by its owner only
SERVER_FILE = "server.json"  # {"url", "pid"} of the local controller
SERVER_LOG = "server.log"
RAY_HEAD_PID_FILE = "ray-head.pid"  # the local Ray head's process group, for cleanup after a crash
CONFIG_FILE = "config.json"  # saved contexts from `dljobs login`


def dljobs_home() -> Path:
    return Path(os.environ.get("DLJOBS_HOME") or Path.home() / ".dljobs").expanduser()
