"""The artifact store fails under a training job: a job whose S3 server restarts while it checkpoints
finishes with all its artifacts; a job whose S3 server stays down never reports success.

Its own S3 server (stopped here) and its own Ray head (whose processes carry that server's credentials).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dljobs.controller.app import create_app
from dljobs.controller.ray_head import LocalRayHead
from dljobs.controller.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.support.environment import environment
from tests.support.factories import model_spec
from tests.support.jobs import WAIT_LIMIT, submit, wait_for
from tests.support.ray import own_ray_head
from tests.support.s3 import SeaweedS3

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# The store's faults do not depend on the database: the cluster's one (PostgreSQL) is enough.
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3(workdir=tmp_path_factory.mktemp("s3")).start()
    try:
        with environment(server.env()):
            yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def head(s3: SeaweedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRayHead]:
    with own_ray_head(tmp_path_factory) as started:
        yield started


@pytest.fixture
def controller(
    s3: SeaweedS3, head: LocalRayHead, clean_database: str, tmp_path: Path
) -> Iterator[TestClient]:
    bucket = s3.create_bucket()
    settings = Settings(
        home=tmp_path,
        mode="cluster",
        database={"url": clean_database},
        ray={"address": head.dashboard_url, "token": head.token},
        # the controller gives up on a store down this long (default 60 s): archiving a failed job's logs
        # waits for it before the job is marked failed
        storage={"url": f"s3://{bucket}/dljobs", "s3_endpoint_url": s3.endpoint_url, "retry_seconds": 10},
        auth={"bootstrap_admin_token": ADMIN_TOKEN},
        scheduler={"interval": 0.2, "capacity_ttl": 0.5},
        reconciler={"interval": 0.5},
    )
    with TestClient(create_app(settings, migrate=False)) as client:
        client.bucket = bucket  # type: ignore[attr-defined]
        yield client


def _when_checkpointed(s3: SeaweedS3, bucket: str, job_id: int, epochs: int) -> None:
    """Wait until the job has saved the checkpoint of epoch `epochs` to S3."""
    deadline = time.monotonic() + WAIT_LIMIT
    marker = f"epoch-{epochs:06d}"
    while True:
        listing = s3.client().list_objects_v2(Bucket=bucket, Prefix=f"dljobs/jobs/{job_id}/checkpoints/")
        if any(marker in item["Key"] for item in listing.get("Contents", [])):
            return
        assert time.monotonic() < deadline, f"job {job_id} saved no checkpoint {marker}"
        time.sleep(0.2)


def test_s3_restarting_mid_training_costs_nothing(controller, s3) -> None:  # type: ignore[no-untyped-def]
    spec = model_spec(training={"epochs": 8, "checkpoint_every": 1}, retries=2)
    job = submit(controller, ADMIN, spec)
    _when_checkpointed(s3, controller.bucket, job["id"], 2)
    s3.stop()
    time.sleep(3)  # checkpoint uploads meet a dead server...
    s3.start()  # ...and a live one again, with everything it stored
    done = wait_for(controller, ADMIN, job["id"])
    assert done["status"] == "SUCCEEDED", done["status_reason"]
    names = {a["name"] for a in controller.get(f"/api/v1/jobs/{job['id']}/artifacts", headers=ADMIN).json()}
    assert {"model.pt", "model.ts", "card.json", "metrics.jsonl", "manifest.json"} <= names
    history = controller.get(f"/api/v1/jobs/{job['id']}/artifacts/metrics.jsonl", headers=ADMIN).text
    epochs = [json.loads(line)["epoch"] for line in history.splitlines()]
    assert epochs == [*range(1, 9), None]  # every epoch once, then the test metrics


def test_s3_down_for_good_never_reports_success(controller, s3) -> None:  # type: ignore[no-untyped-def]
    job = submit(controller, ADMIN, model_spec(training={"epochs": 6, "checkpoint_every": 1}, retries=0))
    _when_checkpointed(s3, controller.bucket, job["id"], 1)
    s3.stop()
    try:
        done = wait_for(controller, ADMIN, job["id"])
    finally:
        s3.start()
    assert done["status"] == "FAILED", done
    events = controller.get(f"/api/v1/jobs/{job['id']}/events", headers=ADMIN).json()
    assert "SUCCEEDED" not in [e["to_status"] for e in events]
