"""Run the real `dljobs` CLI as a subprocess, pointed at a server that cannot be reached."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Nothing listens on port 9 (discard): a command that connects fails, and no local stack is ever started.
UNREACHABLE_URL = "http://127.0.0.1:9"


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLJOBS_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        DLJOBS_URL=UNREACHABLE_URL,
        DLJOBS_HOME=str(home),
        COLUMNS="400",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], home: Path, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`dljobs ARGS` in a fresh interpreter; stdout and stderr as text (undecodable bytes replaced)."""
    return subprocess.run(
        [sys.executable, "-m", "dljobs.cli.main", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=cli_env(home, **env),
        cwd=cwd or ROOT,
        check=False,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]
