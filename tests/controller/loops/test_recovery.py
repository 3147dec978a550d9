"""The database stays true to Ray across controller restarts, half-done launches and a second controller."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import update

from dljobs.controller.app import create_app
from dljobs.controller.db.base import utcnow
from dljobs.controller.db.engine import create_engine, session_factory
from dljobs.controller.db.meta import installation_id
from dljobs.controller.db.models import JobModel
from dljobs.spec.runtime import launch_id
from tests.conftest import ADMIN_TOKEN
from tests.support.factories import command_spec
from tests.support.jobs import ray_job, ray_jobs_of, submit, transitions, wait_for

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_a_restarted_controller_adopts_running_jobs(live_settings, ray_head) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(live_settings, migrate=False)) as first:
        job = submit(first, ADMIN, command_spec(workload={"command": "sleep 4; echo finished"}))
        running = wait_for(first, ADMIN, job["id"], {"RUNNING"})
    # the controller is gone; the job goes on on Ray
    assert ray_job(ray_head, running["launch_id"])["status"] == "RUNNING"
    with TestClient(create_app(live_settings, migrate=False)) as second:
        done = wait_for(second, ADMIN, job["id"])
        assert done["status"] == "SUCCEEDED" and done["attempt"] == 1
        assert "finished" in second.get(f"/api/v1/jobs/{job['id']}/logs", headers=ADMIN).text
    assert len(ray_jobs_of(ray_head, running["launch_id"].rsplit("-", 1)[0] + "-")) == 1


def _as_if_crashed_after_claim(url: str, job_id: int) -> str:
    """Leave the job as a controller that died between claiming and launching it would have."""

    async def run() -> str:
        engine = create_engine(url)
        installation = await installation_id(session_factory(engine))
        launch = launch_id(installation, job_id, 1)
        async with engine.begin() as connection:
            await connection.execute(
                update(JobModel)
                .where(JobModel.id == job_id)
                .values(
                    status="STARTING",
                    attempt=1,
                    launch_id=launch,
                    started_at=utcnow(),
                    launched_at=None,
                    lease_owner="dead-controller",
                    lease_token="x" * 32,
                    lease_expires_at=utcnow() - timedelta(seconds=1),
                )
            )
        await engine.dispose()
        return launch

    return asyncio.run(run())


def test_a_half_done_launch_is_made_once(api, live_settings, ray_head) -> None:  # type: ignore[no-untyped-def]
    never_sent = submit(api, ADMIN, command_spec(workload={"command": "echo made by the reconciler"}))
    already_sent = submit(api, ADMIN, command_spec(workload={"command": "echo never runs"}))
    first = _as_if_crashed_after_claim(live_settings.database_url, never_sent["id"])
    second = _as_if_crashed_after_claim(live_settings.database_url, already_sent["id"])
    # Ray took the second launch before the controller died (with its own command): it must be adopted
    response = httpx.post(
        f"{ray_head.dashboard_url}/api/jobs/",
        headers={"Authorization": f"Bearer {ray_head.token}"},
        json={"entrypoint": "echo adopted", "submission_id": second},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    with TestClient(create_app(live_settings, migrate=False)) as live:
        for job in (never_sent, already_sent):
            done = wait_for(live, ADMIN, job["id"])
            assert done["status"] == "SUCCEEDED" and done["attempt"] == 1
        assert (
            "made by the reconciler" in live.get(f"/api/v1/jobs/{never_sent['id']}/logs", headers=ADMIN).text
        )
        adopted = live.get(f"/api/v1/jobs/{already_sent['id']}/logs", headers=ADMIN).text
        assert "adopted" in adopted and "never runs" not in adopted
    assert ray_job(ray_head, first) is not None


def test_two_controllers_launch_each_job_once(live_settings, ray_head) -> None:  # type: ignore[no-untyped-def]
    with (
        TestClient(create_app(live_settings, migrate=False)) as one,
        TestClient(create_app(live_settings, migrate=False)) as two,
    ):
        jobs = [
            submit(one if i % 2 else two, ADMIN, command_spec(workload={"command": f"echo job {i}"}))
            for i in range(8)
        ]
        for job in jobs:
            done = wait_for(one, ADMIN, job["id"])
            assert done["status"] == "SUCCEEDED" and done["attempt"] == 1
            assert transitions(one, ADMIN, job["id"]).count("STARTING") == 1
        prefix = done["launch_id"].rsplit("-", 2)[0] + "-"
        launched = [j["submission_id"] for j in ray_jobs_of(ray_head, prefix)]
        assert sorted(launched) == sorted(f"{prefix}{job['id']}-1" for job in jobs)
