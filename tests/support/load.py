"""A steady stream of submissions from a thread, through the SDK client (which retries lost connections
and 503s with the same Idempotency-Key), and the checks every fault test makes afterwards."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from dljobs.client.errors import DljobsError
from dljobs.client.http import Client
from dljobs.spec.status import TERMINAL
from tests.support.factories import command_spec
from tests.support.jobs import WAIT_LIMIT, ray_jobs_of

TERMINAL_NAMES = {s.value for s in TERMINAL}


def small_job(i: int, command: str = "echo {i}") -> dict[str, Any]:
    """A short command job; half a CPU, so that four run at once on a 2-CPU head."""
    return command_spec(
        name=f"load-{i}", workload={"command": command.format(i=i)}, resources={"cpus_per_worker": 0.5}
    )


class SubmitLoad:
    """Submit `total` jobs, one every `interval` seconds; remember each acknowledged one by its key."""

    def __init__(
        self,
        client: Client,
        total: int,
        spec: Callable[[int], dict[str, Any]],
        interval: float = 0.05,
        prefix: str = "",
    ) -> None:
        self.client = client.clone()
        self.prefix = prefix
        self.total = total
        self.spec = spec
        self.interval = interval
        self.acknowledged: dict[str, int] = {}
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for i in range(self.total):
            key = f"{self.prefix}load-{i}"
            spec = self.spec(i)
            spec["name"] = f"{self.prefix}{spec['name']}"
            try:
                job = self.client.submit(spec, idempotency_key=key)
            except DljobsError as exc:
                self.failures.append(f"{key}: {exc}")
            else:
                self.acknowledged[key] = job.id
            time.sleep(self.interval)

    def start(self) -> SubmitLoad:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> None:
        self._thread.join(WAIT_LIMIT)
        assert self.done, "the submissions did not finish"


def all_jobs(client: Client) -> list[Any]:
    jobs, cursor = [], None
    while True:
        page = client.list_jobs(limit=200, cursor=cursor)
        jobs.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            return jobs


def wait_all_terminal(client: Client) -> list[Any]:
    """Until every job has ended; a hang is WAIT_LIMIT seconds without one more job ending."""
    deadline, ended = time.monotonic() + WAIT_LIMIT, -1
    while True:
        jobs = all_jobs(client)
        now_ended = sum(j.status.value in TERMINAL_NAMES for j in jobs)
        if now_ended == len(jobs):
            return jobs
        if now_ended > ended:
            deadline, ended = time.monotonic() + WAIT_LIMIT, now_ended
        assert time.monotonic() < deadline, Counter(j.status.value for j in jobs)
        time.sleep(0.5)


def assert_exactly_once(client: Client, loads: list[SubmitLoad], ray_head: Any) -> list[Any]:
    """Every acknowledged job exists once, ended, launched once, in the state Ray gives its launch."""
    acknowledged = [job_id for load in loads for job_id in load.acknowledged.values()]
    for load in loads:
        assert load.failures == [], load.failures[:5]
        assert len(load.acknowledged) == load.total
    jobs = wait_all_terminal(client)
    assert len(set(acknowledged)) == len(acknowledged)
    assert sorted(j.id for j in jobs) == sorted(acknowledged)
    full = [client.get_job(j.id) for j in jobs]
    prefix = full[0].launch_id.rsplit("-", 2)[0] + "-"
    ours = ray_jobs_of(ray_head, prefix)
    launches = Counter(j["submission_id"] for j in ours)
    ray_status = {j["submission_id"]: j["status"] for j in ours}
    for job in full:
        assert job.attempt == 1, (job.id, job.attempt, job.status_reason)
        assert launches[job.launch_id] == 1, (job.id, job.launch_id)
        assert job.status.value == ray_status[job.launch_id], (job.id, job.status, job.status_reason)
    assert len(launches) == len(full)
    return full
