"""Serving throughput and latency of the digits MLP, in one run, at concurrency 1, 8 and 32:

- dljobs: `POST /api/v1/endpoints/NAME/predict` on a real controller (uvicorn, SQLite), through its key
  check, input check, stats, canary routing and the joining of waiting callers' inputs to the Ray Serve
  application its deployer made;
- plain Serve: the same TorchScript model as a plain Serve deployment with the same batching in its replica,
  called on Serve's proxy directly (the baseline);
- in-process: the model called directly, one input per call and a batch of `concurrency` inputs per call
  (the upper bound: no HTTP, no Serve);
- dljobs with batching off (max_batch_size 1: no joining, no batches in the replica), to show what batching
  gains.

Each request carries one 64-value input. A light closed-loop load generator (bench/loadgen.py) drives the
HTTP targets from this process. Targets: dljobs >= 0.9x plain Serve's throughput; p99 < 50 ms at 8.

    python -m bench.serve_latency [--seconds 5] [--num-cpus 2] [--batch-wait-ms 2]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.controller import launch_controller  # noqa: E402
from bench.loadgen import Result, closed_loop, request_bytes  # noqa: E402
from dljobs.controller.ray_head import LocalRayHead, free_port  # noqa: E402
from dljobs.processes import stop_popen_group  # noqa: E402

TOKEN = "dlj_bench-admin-token-0000000000000000000000"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONCURRENCY = (1, 8, 32)
INPUT = [float(v % 17) for v in range(64)]
BODY = json.dumps({"inputs": [INPUT]}).encode()


def train_digits(artifacts: Path) -> None:
    """A digits MLP trained in-process (a few epochs), exported as the runner exports it, with its card."""
    import torch

    from dljobs.spec.loading import validate_spec
    from dljobs.workloads.artifacts import model_card
    from dljobs.workloads.data import load_data
    from dljobs.workloads.models import build_model, export_torchscript

    spec = validate_spec(
        {
            "name": "bench-digits",
            "workload": {"model": "mlp", "params": {"hidden": [128, 64]}},
            "data": {"source": "builtin://digits"},
            "training": {"epochs": 5, "seed": 1},
        }
    )
    prepared = load_data(spec, seed=1)
    model = build_model(spec.workload, prepared.info)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(prepared.train, batch_size=64, shuffle=True)
    for _ in range(5):
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    buffer = io.BytesIO()
    torch.jit.save(export_torchscript(model.eval(), prepared.info), buffer)
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "model.ts").write_bytes(buffer.getvalue())
    card = model_card(spec=spec, job_id="bench", attempt=1, seed=1, summary={}, info=prepared.info)
    (artifacts / "card.json").write_text(json.dumps(card))


def start_controller(home: Path, head: LocalRayHead, serve_port: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DLJOBS_HOME": str(home),
        "DLJOBS_MODE": "cluster",
        "DLJOBS_DATABASE__URL": f"sqlite+aiosqlite:///{home / 'db.sqlite'}",
        "DLJOBS_RAY__ADDRESS": head.dashboard_url,
        "DLJOBS_RAY__TOKEN": head.token,
        "DLJOBS_STORAGE__URL": (home / "artifacts").as_uri(),
        "DLJOBS_AUTH__BOOTSTRAP_ADMIN_TOKEN": TOKEN,
        "DLJOBS_SCHEDULER__ENABLED": "false",
        "DLJOBS_RECONCILER__ENABLED": "false",
        "DLJOBS_SERVING__HTTP_PORT": str(serve_port),
        "DLJOBS_SERVER__PORT": str(port),
    }
    return launch_controller(env, home, port)


def trained_job(url: str, home: Path, model_dir: Path) -> int:
    """A job row made to look trained: its artifacts are the in-process model's."""
    from sqlalchemy import text

    from dljobs.controller.db.engine import create_engine

    spec = {"name": "bench-digits", "workload": {"model": "mlp"}, "data": {"source": "builtin://digits"}}
    job = httpx.post(f"{url}/api/v1/jobs", json={"spec": spec}, headers=AUTH, timeout=30).json()
    target = home / "artifacts" / "jobs" / str(job["id"])
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model.ts", "card.json"):
        (target / name).write_bytes((model_dir / name).read_bytes())

    async def mark() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{home / 'db.sqlite'}")
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE jobs SET status='SUCCEEDED', finished_at=CURRENT_TIMESTAMP WHERE id=:i"),
                {"i": job["id"]},
            )
        await engine.dispose()

    asyncio.run(mark())
    return int(job["id"])


def wait_ready(url: str, name: str, check: Any = None) -> None:
    check = check or (lambda e: e["status"] == "ready")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        endpoint = httpx.get(f"{url}/api/v1/endpoints/{name}", headers=AUTH, timeout=10).json()
        if check(endpoint):
            return
        time.sleep(0.5)
    raise RuntimeError(f"endpoint {name} not ready: {endpoint}")


def measure(url: str, headers: dict[str, str], seconds: float) -> dict[int, Result]:
    make = lambda: request_bytes("POST", url, {**headers, "Content-Type": "application/json"}, BODY)  # noqa: E731
    asyncio.run(closed_loop(url, make, 4, 1.0))  # warm-up
    results = {}
    for clients in CONCURRENCY:
        result = asyncio.run(closed_loop(url, make, clients, seconds))
        if result.errors:
            raise RuntimeError(f"{url}: {result.errors} requests failed at concurrency {clients}")
        results[clients] = result
    return results


def measure_get(url: str, seconds: float) -> dict[int, Result]:
    make = lambda: request_bytes("GET", url, AUTH)  # noqa: E731
    return {clients: asyncio.run(closed_loop(url, make, clients, seconds)) for clients in CONCURRENCY}


def in_process(model_dir: Path, seconds: float) -> dict[int, tuple[float, float, float]]:
    """(inputs/s, p50 ms, p99 ms) calling the model directly with `concurrency` inputs per call."""
    from dljobs.workloads.serving.predictor import Predictor

    predictor = Predictor(model_dir.as_uri())
    out = {}
    for clients in CONCURRENCY:
        batch = [INPUT] * clients
        latencies = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            predictor.predict(batch)
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        rate = len(latencies) * clients / sum(latencies) * 1000
        out[clients] = (rate, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)])
    return out


def plain_config(model_dir: Path, serve_port: int, num_cpus: float, batch_wait_ms: float) -> dict[str, Any]:
    return {
        "http_options": {"host": "127.0.0.1", "port": serve_port},
        "applications": [
            {
                "name": "plain",
                "route_prefix": "/plain",
                "import_path": "bench.plain_serve_app:build",
                "args": {
                    "artifacts_uri": model_dir.as_uri(),
                    "max_batch_size": 32,
                    "batch_wait_ms": batch_wait_ms,
                },
                "deployments": [
                    {
                        "name": "Plain",
                        "num_replicas": 1,
                        "max_ongoing_requests": 64,
                        "ray_actor_options": {"num_cpus": num_cpus},
                    }
                ],
            }
        ],
    }


def row(name: str, results: dict[int, Result]) -> dict[int, float]:
    rates = {}
    for clients, result in results.items():
        rates[clients] = result.rate
        print(
            f"  {name:<26} c={clients:<3} {result.rate:>8.0f} req/s   p50 {result.percentile(50):>6.1f} ms"
            f"   p99 {result.percentile(99):>6.1f} ms"
        )
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch-wait-ms", type=float, default=2.0, help="replicas' batch wait, both targets")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 2, help="the Ray head's CPUs")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    model_dir = home / "model"
    print(f"training the digits MLP in-process ({home}) ...", flush=True)
    train_digits(model_dir)
    head = LocalRayHead(num_cpus=args.num_cpus, log_file=home / "ray.log").start()
    serve_port = free_port()
    controller = None
    try:
        ray_auth = {"Authorization": f"Bearer {head.token}"}
        # 1. plain Serve, alone on the cluster
        put = httpx.put(
            f"{head.dashboard_url}/api/serve/applications/",
            json=plain_config(model_dir, serve_port, 0.5, args.batch_wait_ms),
            headers=ray_auth,
            timeout=60,
        )
        put.raise_for_status()
        plain_url = f"http://127.0.0.1:{serve_port}/plain"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.post(plain_url, content=BODY, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        print(f"\nconcurrency {CONCURRENCY}, {args.seconds:g} s each, one input per request\n")
        plain = row("plain Ray Serve", measure(plain_url, {}, args.seconds))

        # 2. dljobs: its deployer replaces Serve's config with the endpoint's application
        controller, url = start_controller(home, head, serve_port)
        job = trained_job(url, home, model_dir)
        config = {"num_cpus": 0.5, "max_batch_size": 32, "batch_wait_ms": args.batch_wait_ms}
        body = {"name": "digits", "job": str(job), "config": config}
        deployed = httpx.post(f"{url}/api/v1/endpoints", json=body, headers=AUTH, timeout=30).json()
        key = {"Authorization": f"Bearer {deployed['key']['key']}"}
        wait_ready(url, "digits")
        predict = f"{url}/api/v1/endpoints/digits/predict"
        dljobs = row("dljobs endpoint", measure(predict, key, args.seconds))
        # the controller's own HTTP ceiling on this machine: an authenticated GET that touches no model
        health = f"{url}/api/v1/health"
        row("controller /health (ceiling)", measure_get(health, args.seconds))

        # 3. dljobs without batching (a config change: the same version's application is redeployed)
        body["config"] = {"max_batch_size": 1, "batch_wait_ms": 0}
        httpx.post(f"{url}/api/v1/endpoints", json=body, headers=AUTH, timeout=30).raise_for_status()
        time.sleep(3)
        wait_ready(url, "digits")
        unbatched = row("dljobs, batching off", measure(predict, key, args.seconds))

        # 4. in-process, the upper bound
        for clients, (rate, p50, p99) in in_process(model_dir, args.seconds).items():
            print(
                f"  {'in-process (batch=c)':<26} c={clients:<3} {rate:>8.0f} inp/s   p50 {p50:>6.2f} ms"
                f"   p99 {p99:>6.2f} ms"
            )
        print()
        for clients in CONCURRENCY:
            print(
                f"  c={clients:<3} dljobs / plain Serve throughput: {dljobs[clients] / plain[clients]:.2f}x"
                f" (target >= 0.9x);  batching gain: {dljobs[clients] / unbatched[clients]:.2f}x"
            )
    finally:
        if controller is not None:
            stop_popen_group(controller, 30)
        head.stop()


if __name__ == "__main__":
    main()
