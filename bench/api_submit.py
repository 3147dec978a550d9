"""API throughput and latency: job submissions with 32 concurrent clients, and list/get with 100,000 jobs.

Runs a real controller (uvicorn, one process, loops off so jobs stay queued) on PostgreSQL and on SQLite.
The baseline, measured in the same run, is the same server's /health endpoint at the same concurrency:
the ceiling of the HTTP stack itself, so `ratio` shows what dljobs' own work costs.

    python -m bench.api_submit [--seconds 10] [--clients 32] [--stored 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dljobs.controller.ray_head import free_port  # noqa: E402
from dljobs.processes import stop_popen_group  # noqa: E402
from tests.support.postgres import create_database, drop_database  # noqa: E402

TOKEN = "dlj_bench-admin-token-0000000000000000000000"
SPEC = {
    "name": "bench",
    "workload": {"command": "echo hi"},
    "resources": {"workers": 1, "cpus_per_worker": 1},
}
TARGETS = {"submit_rate_pg": 500.0, "submit_p99_ms": 50.0, "read_p99_ms": 20.0}


def start_server(database_url: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
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
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "dljobs.controller", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(home / "server.log", "wb"),  # noqa: SIM115
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


async def load(url: str, clients: int, seconds: float, request) -> tuple[int, list[float]]:  # type: ignore[no-untyped-def]
    """Run `request(client)` from `clients` concurrent tasks for `seconds`; (count, latencies in ms)."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, limits=limits, timeout=30
    ) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await request(client)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code >= 400:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.monotonic() - started
    return int(len(latencies) / elapsed), latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def submit(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post(
        "/api/v1/jobs", json={"spec": SPEC}, headers={"Idempotency-Key": uuid.uuid4().hex}
    )


async def health(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/api/v1/health")


def seed(database_url: str, count: int) -> None:
    """Insert `count` finished jobs directly (what months of use leave behind)."""
    from dljobs.controller.db.engine import create_engine

    async def run() -> None:
        from sqlalchemy import text

        engine = create_engine(database_url)
        spec = json.dumps({**SPEC, "training": {"seed": 1}})
        async with engine.begin() as connection:
            project = (
                await connection.execute(text("SELECT id FROM projects WHERE name='default'"))
            ).scalar()
            user = (await connection.execute(text("SELECT id FROM users WHERE name='admin'"))).scalar()
            rows = [{"p": project, "u": user, "n": f"old-{i % 500}", "s": spec} for i in range(count)]
            for start in range(0, count, 5000):
                await connection.execute(
                    text(
                        "INSERT INTO jobs (kind, project_id, name, status, priority, spec, submitted_by, "
                        "cpus, gpus, attempt, max_retries, timeout_s, created_at, updated_at) VALUES "
                        "('job', :p, :n, 'SUCCEEDED', 1, :s, :u, 1, 0, 1, 2, 3600, CURRENT_TIMESTAMP, "
                        "CURRENT_TIMESTAMP)"
                    ),
                    rows[start : start + 5000],
                )
        await engine.dispose()

    asyncio.run(run())


def report(name: str, value: float, target: float, unit: str, better: str) -> None:
    ok = value >= target if better == "higher" else value <= target
    sign = ">=" if better == "higher" else "<="
    print(
        f"  {name:<34} {value:>9.1f} {unit:<6} target {sign} {target:g} {unit}  {'met' if ok else 'MISSED'}"
    )


def run_backend(backend: str, args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-"))
    url_db = (
        create_database("dljobs_bench")
        if backend == "postgres"
        else f"sqlite+aiosqlite:///{home / 'db.sqlite'}"
    )
    process, url = start_server(url_db, home)
    try:
        print(f"{backend}:")
        base_rate, base_lat = asyncio.run(load(url, args.clients, args.seconds, health))
        rate, lat = asyncio.run(load(url, args.clients, args.seconds, submit))
        print(f"  baseline /health at {args.clients} clients: {base_rate}/s, p99 {pct(base_lat, 99):.1f} ms")
        report(f"submissions ({args.clients} clients)", rate, TARGETS["submit_rate_pg"], "/s", "higher")
        print(f"  {'ratio to the /health baseline':<34} {rate / base_rate:>9.2f}")
        print(f"  submit latency p50 {pct(lat, 50):.1f} ms")
        report("submit latency p99", pct(lat, 99), TARGETS["submit_p99_ms"], "ms", "lower")
        seed(url_db, args.stored)
        _, list_lat = asyncio.run(
            load(url, 4, args.seconds / 2, lambda c: c.get("/api/v1/jobs", params={"limit": 50}))
        )
        report(f"list p99 ({args.stored:,} stored)", pct(list_lat, 99), TARGETS["read_p99_ms"], "ms", "lower")
        _, get_lat = asyncio.run(
            load(
                url,
                4,
                args.seconds / 2,
                lambda c: c.get(f"/api/v1/jobs/{1 + int(time.time() * 1000) % args.stored}"),
            )
        )
        report(f"get p99 ({args.stored:,} stored)", pct(get_lat, 99), TARGETS["read_p99_ms"], "ms", "lower")
    finally:
        stop_popen_group(process)
        if backend == "postgres":
            drop_database(url_db)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    args = parser.parse_args()
    for backend in ["postgres", "sqlite"] if args.backend == "both" else [args.backend]:
        run_backend(backend, args)


if __name__ == "__main__":
    main()
