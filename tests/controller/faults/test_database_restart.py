"""PostgreSQL restarted under load: the controller recovers by itself, clients see at most retried
requests, and nothing acknowledged is lost or launched twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dljobs.client.http import Client
from dljobs.controller.db.migrate import upgrade
from tests.conftest import ADMIN_TOKEN
from tests.support.controller_process import ControllerProcess, controller_env
from tests.support.load import SubmitLoad, assert_exactly_once, small_job
from tests.support.pg_server import PrivatePostgres

JOBS = 36  # a third acknowledged before the outage, the rest during and after it


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().start()
    try:
        yield server
    finally:
        server.cleanup()


def test_postgres_restarted_under_load(postgres: PrivatePostgres, ray_head, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = postgres.create_database()
    upgrade(url)
    controller = ControllerProcess(
        controller_env(url, ray_head, tmp_path / "home", ADMIN_TOKEN), tmp_path / "controller.log"
    ).start()
    try:
        client = Client(controller.url, ADMIN_TOKEN, retries=12)
        load = SubmitLoad(client, JOBS, small_job, interval=0.1).start()
        while len(load.acknowledged) < JOBS // 3:
            time.sleep(0.05)
        postgres.restart(downtime=2.0)  # connections in the pool die; requests in flight fail
        load.join()
        assert_exactly_once(client, [load], ray_head)
        assert httpx.get(f"{controller.url}/api/v1/ready", timeout=10).status_code == 200
        assert controller.process is not None and controller.process.poll() is None, "the controller died"
    finally:
        controller.stop()
