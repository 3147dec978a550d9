"""Fault scenarios run by the tests (small) and by bench/reliability.py (at full size): a stream of short
jobs through controllers in their own processes, with the controller killed, or two of them at once."""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dljobs.client.http import Client
from tests.support.controller_process import ControllerProcess, controller_env
from tests.support.jobs import WAIT_LIMIT, ray_jobs_of
from tests.support.load import SubmitLoad, assert_exactly_once, small_job


@dataclass
class Outcome:
    jobs: int
    seconds: float
    kills: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the run, downtime)
    running_at_kills: int = 0  # jobs running on Ray while their controller was dead
    shares: list[dict[str, float]] = field(default_factory=list)  # per controller: launches, reconciled


def _counter(url: str, token: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30).text
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def _short_or_long(i: int) -> dict[str, Any]:
    return small_job(i, f"sleep {10 if i % 10 == 0 else 1}; echo {{i}}")


def _running_on(ray_head: Any) -> set[str]:
    return {j["submission_id"] for j in ray_jobs_of(ray_head, "dljobs-") if j["status"] == "RUNNING"}


def controller_kills(
    ray_head: Any,
    database_url: str,
    workdir: Path,
    token: str,
    *,
    jobs: int,
    kills: int,
    downtimes: tuple[float, ...] = (0.0, 2.0, 5.0),
    seed: int = 0,
) -> Outcome:
    """Submit `jobs` short jobs (a second; every tenth runs ten) while SIGKILLing the controller `kills`
    times at random moments, the first once a job runs on Ray (so that one outlives its controller)."""
    rng = random.Random(seed)
    env = controller_env(database_url, ray_head, workdir / "home", token)
    controller = ControllerProcess(env, workdir / "controller.log").start()
    began = time.monotonic()
    try:
        client = Client(controller.url, token, retries=20)
        load = SubmitLoad(client, jobs, _short_or_long, interval=0.02).start()
        outcome = Outcome(jobs=jobs, seconds=0.0)
        running: set[str] = set()
        for k, downtime in enumerate(downtimes[k % len(downtimes)] for k in range(kills)):
            time.sleep(rng.uniform(1.0, 6.0))
            while k == 0 and not _running_on(ray_head) and time.monotonic() - began < WAIT_LIMIT:
                time.sleep(0.1)
            controller.kill()
            outcome.kills.append((round(time.monotonic() - began, 1), downtime))
            running |= _running_on(ray_head)
            time.sleep(downtime)
            controller.start()
        load.join()
        done = assert_exactly_once(client, [load], ray_head)
        outcome.running_at_kills = len(running & {j.launch_id for j in done})
        outcome.seconds = round(time.monotonic() - began, 1)
        return outcome
    finally:
        controller.stop()


def two_controllers(ray_head: Any, database_url: str, workdir: Path, token: str, *, jobs: int) -> Outcome:
    """Half of `jobs` submitted to each of two controllers sharing one database."""
    controllers = [
        ControllerProcess(
            controller_env(database_url, ray_head, workdir / f"home-{n}", token),
            workdir / f"controller-{n}.log",
        ).start()
        for n in (1, 2)
    ]
    began = time.monotonic()
    try:
        clients = [Client(c.url, token, retries=20) for c in controllers]
        loads = [
            SubmitLoad(client, jobs // 2, small_job, interval=0.01, prefix=f"c{n}-").start()
            for n, client in enumerate(clients, 1)
        ]
        for load in loads:
            load.join()
        assert_exactly_once(clients[0], loads, ray_head)
        outcome = Outcome(jobs=jobs, seconds=round(time.monotonic() - began, 1))
        outcome.shares = [
            {
                "launches": _counter(c.url, token, "dljobs_launches_total"),
                "reconciled": _counter(c.url, token, "dljobs_reconciled_total"),
            }
            for c in controllers
        ]
        return outcome
    finally:
        for c in controllers:
            c.stop()
