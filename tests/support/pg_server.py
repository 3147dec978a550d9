"""A PostgreSQL server of a test's own (initdb in a temp directory, a free port), so that a test can stop
and restart it without touching the machine's shared server."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import restartable_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return found[-1]


class PrivatePostgres:
    """initdb + pg_ctl, run as the `postgres` system user (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.port = restartable_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="dljobs-pg-"))
        self.data = self.workdir / "data"
        self._user = pwd.getpwnam("postgres")
        os.chown(self.workdir, self._user.pw_uid, self._user.pw_gid)

    def _as_postgres(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True, timeout=120
        )

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            done = self._as_postgres(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
            if done.returncode != 0:
                raise RuntimeError(f"initdb failed: {done.stderr}")
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        done = self._as_postgres(
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.workdir / "log"),
            "-w",
            "start",
        )
        if done.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {done.stderr}{self.log()}")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, downtime: float = 0.0) -> None:
        self.stop()
        time.sleep(downtime)
        self.start()

    def create_database(self, name: str = "dljobs") -> str:
        done = self._as_postgres(
            _bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-c",
            f'CREATE DATABASE "{name}"',
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def log(self) -> str:
        path = self.workdir / "log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)
