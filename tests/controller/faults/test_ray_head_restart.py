"""The Ray head restarted under running and queued jobs: what ran on it is marked failed with the reason and
retried within its budget; what was queued waits for Ray and then runs.

Its own Ray head (stopped here), and the embedded database (SQLite), as on a laptop whose Ray head died.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dljobs.controller.app import create_app
from dljobs.controller.ray_head import LocalRayHead
from dljobs.controller.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.support.factories import command_spec
from tests.support.jobs import submit, wait_for
from tests.support.ray import own_ray_head

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRayHead]:
    with own_ray_head(tmp_path_factory, restartable=True) as started:
        yield started


@pytest.fixture
def controller(head: LocalRayHead, clean_database: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        home=tmp_path,
        mode="cluster",
        database={"url": clean_database},
        ray={"address": head.dashboard_url, "token": head.token, "request_timeout": 5},
        storage={"url": (tmp_path / "artifacts").as_uri()},
        auth={"bootstrap_admin_token": ADMIN_TOKEN},
        scheduler={"interval": 0.2, "capacity_ttl": 0.5},
        reconciler={"interval": 0.5},
    )
    with TestClient(create_app(settings, migrate=True)) as client:
        yield client


def _job(command: str, retries: int) -> dict[str, object]:
    return command_spec(workload={"command": command}, retries=retries, resources={"cpus_per_worker": 0.5})


def test_a_restarted_ray_head_fails_and_retries_what_ran_and_runs_what_waited(controller, head) -> None:  # type: ignore[no-untyped-def]
    retried = submit(controller, ADMIN, _job("sleep 10; echo second life", retries=1))
    lost = submit(controller, ADMIN, _job("sleep 10; echo never ends", retries=0))
    for job in (retried, lost):
        wait_for(controller, ADMIN, job["id"], {"RUNNING"})
    head.stop()  # the head and every process on it: Ray's job table is gone with it
    waiting = submit(controller, ADMIN, _job("echo ran after the restart", retries=0))
    time.sleep(3)
    assert controller.get(f"/api/v1/jobs/{waiting['id']}", headers=ADMIN).json()["status"] == "QUEUED"
    head.start()  # a new head on the same address, with the same token

    done = wait_for(controller, ADMIN, retried["id"])
    assert done["status"] == "SUCCEEDED" and done["attempt"] == 2, done
    events = controller.get(f"/api/v1/jobs/{retried['id']}/events", headers=ADMIN).json()
    retry = next(e for e in events if e["to_status"] == "RETRYING")
    assert "Ray job was lost" in retry["reason"], retry
    assert "second life" in controller.get(f"/api/v1/jobs/{retried['id']}/logs", headers=ADMIN).text

    failed = wait_for(controller, ADMIN, lost["id"])
    assert failed["status"] == "FAILED" and "Ray job was lost" in failed["status_reason"], failed

    ran = wait_for(controller, ADMIN, waiting["id"])
    assert ran["status"] == "SUCCEEDED" and ran["attempt"] == 1, ran
