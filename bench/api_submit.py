"""API throughput and latency: job submissions with 32 concurrent clients, and list/get with 100,000 jobs.

Runs a real controller (uvicorn, `--workers` API processes, loops off so jobs stay queued) on PostgreSQL
and on SQLite, and a light load generator (bench/loadgen.py) on the same machine.

Figures, each beside its target:
- the most submissions per second 32 clients get (closed loop), and that as a ratio to the same server's
  /health at the same concurrency (the baseline, measured in the same run: the HTTP stack's own ceiling);
- submission latency p50/p99 when 500 submissions per second arrive over 32 connections (open loop: latency
  counts from when each request was due);
- list (50 newest) and get latency p99 with 100,000 jobs stored, at 100 requests per second.

    python -m bench.api_submit [--seconds 10] [--clients 32] [--stored 100000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from itertools import count
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.controller import launch_controller  # noqa: E402
from bench.loadgen import Result, closed_loop, open_loop, request_bytes  # noqa: E402
from dljobs.controller.ray_head import free_port  # noqa: E402
from dljobs.processes import stop_popen_group  # noqa: E402
from tests.support.postgres import create_database, drop_database  # noqa: E402

TOKEN = "dlj_bench-admin-token-0000000000000000000000"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SPEC = {
    "name": "bench",
    "workload": {"command": "echo hi"},
    "resources": {"workers": 1, "cpus_per_worker": 1},
}
SUBMIT_RATE, SUBMIT_P99_MS, READ_P99_MS, READ_RATE = 500.0, 50.0, 20.0, 100.0


def start_server(database_url: str, home: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DLJOBS_HOME": str(home),
        "DLJOBS_MODE": "cluster",
        "DLJOBS_DATABASE__URL": database_url,
        "DLJOBS_DATABASE__POOL_SIZE": "20",
        "DLJOBS_RAY__ADDRESS": f"http://127.0.0.1:{free_port()}",  # no Ray: the loops are off
        "DLJOBS_STORAGE__URL": (home / "artifacts").as_uri(),
        "DLJOBS_AUTH__BOOTSTRAP_ADMIN_TOKEN": TOKEN,
        "DLJOBS_SCHEDULER__ENABLED": "false",
        "DLJOBS_RECONCILER__ENABLED": "false",
        "DLJOBS_SERVER__PORT": str(port),
        "DLJOBS_SERVER__WORKERS": str(workers),
    }
    return launch_controller(env, home, port)


def submit_request(url: str):  # type: ignore[no-untyped-def]
    body = json.dumps({"spec": SPEC}).encode()
    headers = {**AUTH, "Content-Type": "application/json"}
    return lambda: request_bytes(
        "POST", f"{url}/api/v1/jobs", {**headers, "Idempotency-Key": uuid.uuid4().hex}, body
    )


def seed(database_url: str, count_: int) -> None:
    """Insert `count_` finished jobs directly (what months of use leave behind)."""
    from sqlalchemy import text

    from dljobs.controller.db.engine import create_engine

    async def run() -> None:
        engine = create_engine(database_url)
        spec = json.dumps({**SPEC, "training": {"seed": 1}})
        async with engine.begin() as connection:
            project = (
                await connection.execute(text("SELECT id FROM projects WHERE name='default'"))
            ).scalar()
            user = (await connection.execute(text("SELECT id FROM users WHERE name='admin'"))).scalar()
            rows = [{"p": project, "u": user, "n": f"old-{i % 500}", "s": spec} for i in range(count_)]
            insert = text(
                "INSERT INTO jobs (kind, project_id, name, status, priority, spec, submitted_by, cpus, "
                "gpus, attempt, max_retries, timeout_s, created_at, updated_at) VALUES ('job', :p, :n, "
                "'SUCCEEDED', 1, :s, :u, 1, 0, 1, 2, 3600, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
            for start in range(0, count_, 5000):
                await connection.execute(insert, rows[start : start + 5000])
        await engine.dispose()

    asyncio.run(run())


def line(name: str, value: float, unit: str, target: float | None = None, better: str = "higher") -> None:
    text = f"  {name:<46} {value:>9.1f} {unit:<4}"
    if target is not None:
        ok = value >= target if better == "higher" else value <= target
        text += (
            f"  target {'>=' if better == 'higher' else '<='} {target:g} {unit}: {'met' if ok else 'MISSED'}"
        )
    print(text)


def check(result: Result, what: str) -> None:
    if result.errors:
        raise RuntimeError(f"{what}: {result.errors} requests failed")


def run_backend(backend: str, args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-"))
    db = (
        create_database("dljobs_bench")
        if backend == "postgres"
        else f"sqlite+aiosqlite:///{home / 'db.sqlite'}"
    )
    workers = args.workers if backend == "postgres" else 1  # SQLite is the single-process embedded default
    process, url = start_server(db, home, workers)
    try:
        print(f"{backend} ({workers} API process{'es' if workers > 1 else ''}, {args.clients} clients):")
        health = request_bytes("GET", f"{url}/api/v1/health")
        baseline = asyncio.run(closed_loop(url, lambda: health, args.clients, args.seconds))
        most = asyncio.run(closed_loop(url, submit_request(url), args.clients, args.seconds))
        check(most, "submissions")
        line("health, the baseline (closed loop)", baseline.rate, "/s")
        line("submissions (closed loop)", most.rate, "/s", SUBMIT_RATE)
        line("  ratio to the baseline", most.rate / baseline.rate, "")
        steady = asyncio.run(open_loop(url, submit_request(url), SUBMIT_RATE, args.clients, args.seconds))
        check(steady, "steady submissions")
        line(f"submission p50 at {SUBMIT_RATE:g}/s (open loop)", steady.percentile(50), "ms")
        line(
            f"submission p99 at {SUBMIT_RATE:g}/s (open loop)",
            steady.percentile(99),
            "ms",
            SUBMIT_P99_MS,
            "lower",
        )
        seed(db, args.stored)
        newest = request_bytes("GET", f"{url}/api/v1/jobs?limit=50", AUTH)
        ids = count(1)
        one = lambda: request_bytes("GET", f"{url}/api/v1/jobs/{1 + next(ids) * 7919 % args.stored}", AUTH)  # noqa: E731
        listed = asyncio.run(open_loop(url, lambda: newest, READ_RATE, 4, args.seconds))
        got = asyncio.run(open_loop(url, one, READ_RATE, 4, args.seconds))
        check(listed, "list")
        check(got, "get")
        line(
            f"list p99, {args.stored:,} stored, {READ_RATE:g}/s",
            listed.percentile(99),
            "ms",
            READ_P99_MS,
            "lower",
        )
        line(
            f"get p99, {args.stored:,} stored, {READ_RATE:g}/s",
            got.percentile(99),
            "ms",
            READ_P99_MS,
            "lower",
        )
    finally:
        stop_popen_group(process)
        if backend == "postgres":
            drop_database(db)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="API processes of the PostgreSQL controller")
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    args = parser.parse_args()
    for backend in ["postgres", "sqlite"] if args.backend == "both" else [args.backend]:
        run_backend(backend, args)


if __name__ == "__main__":
    main()
