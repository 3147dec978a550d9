"""Helpers for tests that run jobs through a live controller (loops on) and a real Ray head."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import update

from dljobs.controller.db.engine import create_engine
from dljobs.controller.db.models import JobModel
from dljobs.controller.services.auth import JOB_TOKEN_PREFIX, hash_token, new_token
from dljobs.spec.status import TERMINAL

# A safeguard against a hang, not a performance check: jobs here take seconds.
WAIT_LIMIT = 600.0


def submit(api: TestClient, headers: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/api/v1/jobs", json={"spec": spec}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def job_token(url: str, job_id: int) -> dict[str, str]:
    """Give the job a (new) reporting token, as the scheduler does when it launches it: its auth header."""
    token = new_token(JOB_TOKEN_PREFIX)

    async def run() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.execute(
                update(JobModel).where(JobModel.id == job_id).values(report_token_hash=hash_token(token))
            )
        await engine.dispose()

    asyncio.run(run())
    return {"Authorization": f"Bearer {token}"}


def wait_for(
    api: TestClient,
    headers: dict[str, str],
    job_id: int,
    statuses: set[str] | None = None,
) -> dict[str, Any]:
    """Poll until the job reaches one of `statuses` (default: any terminal status)."""
    wanted = statuses or {s.value for s in TERMINAL}
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        job = api.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in wanted:
            return job  # type: ignore[no-any-return]
        if job["status"] in {s.value for s in TERMINAL}:
            raise AssertionError(
                f"job {job_id} ended {job['status']} ({job['status_reason']}), wanted {wanted}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {WAIT_LIMIT:.0f}s")
        time.sleep(0.2)


def transitions(api: TestClient, headers: dict[str, str], job_id: int) -> list[str]:
    return [e["to_status"] for e in api.get(f"/api/v1/jobs/{job_id}/events", headers=headers).json()]


def ray_job(ray_head: Any, launch_id: str) -> dict[str, Any] | None:
    """What Ray itself says about a launch (None if it has no such job)."""
    response = httpx.get(
        f"{ray_head.dashboard_url}/api/jobs/{launch_id}",
        headers={"Authorization": f"Bearer {ray_head.token}"},
        timeout=30,
    )
    return response.json() if response.status_code == 200 else None


def ray_jobs_of(ray_head: Any, prefix: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{ray_head.dashboard_url}/api/jobs/",
        headers={"Authorization": f"Bearer {ray_head.token}"},
        timeout=30,
    )
    return [j for j in response.json() if (j.get("submission_id") or "").startswith(prefix)]
