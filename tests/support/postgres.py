"""A fresh PostgreSQL database per test session, on the local server (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import os
import subprocess
import uuid

PG_HOST = os.environ.get("DLJOBS_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("DLJOBS_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("DLJOBS_TEST_PG_USER", "postgres")


def _psql(sql: str, database: str = "postgres") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "psql",
            "-h",
            PG_HOST,
            "-p",
            str(PG_PORT),
            "-U",
            PG_USER,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAtc",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def ensure_server() -> None:
    """Start the machine's PostgreSQL cluster if it is down (as ARCHITECTURE.md describes)."""
    if _psql("select 1").returncode == 0:
        return
    subprocess.run(
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
        shell=True,
        capture_output=True,
        timeout=60,
    )
    result = _psql("select 1")
    if result.returncode != 0:
        raise RuntimeError(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}: {result.stderr.strip()}")


def create_database(prefix: str = "dljobs_test") -> str:
    """Create an empty database and return its async SQLAlchemy URL."""
    ensure_server()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    result = _psql(f'CREATE DATABASE "{name}"')
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
