"""Session-wide real components: a Ray head with token auth, PostgreSQL databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One local Ray head for the session (token auth, free ports, its own temp dir)."""
    from tests.support.ray import own_ray_head

    with own_ray_head(tmp_path_factory, int(os.environ.get("DLJOBS_TEST_RAY_CPUS", "2"))) as head:
        yield head


@pytest.fixture(scope="session")
def s3_server() -> Iterator[object]:
    """One SeaweedFS S3 server for the session (free ports, one identity). Use `create_bucket()` per test."""
    from tests.support.s3 import SeaweedS3

    server = SeaweedS3().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of each backend; the API tests that use it run once per backend."""
    from tests.support.databases import migrated_database
    from tests.support.postgres import drop_database

    url = migrated_database(request.param, tmp_path_factory.mktemp(f"db-{request.param}"))
    try:
        yield url
    finally:
        if request.param == "postgres":
            drop_database(url)


@pytest.fixture
def clean_database(database_url: str) -> str:
    from tests.support.databases import empty_tables

    empty_tables(database_url)
    return database_url


@pytest.fixture
def settings(clean_database: str, ray_head: object, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Controller settings on the test database and the session's Ray head; loops off unless a test
    turns them on (`settings.scheduler.enabled = True`)."""
    from dljobs.controller.settings import Settings

    value = Settings(
        home=tmp_path / "home",
        mode="cluster",
        database={"url": clean_database},
        ray={"address": ray_head.dashboard_url, "token": ray_head.token},  # type: ignore[attr-defined]
        storage={"url": (tmp_path / "artifacts").as_uri()},
        auth={"bootstrap_admin_token": ADMIN_TOKEN},
        scheduler={"enabled": False, "interval": 0.2},
        reconciler={"enabled": False, "interval": 0.2},
        serving={"enabled": False, "interval": 0.3},
    )
    return value


ADMIN_TOKEN = "dlj_test-admin-token-000000000000000000000"


@pytest.fixture(scope="session")
def serve_port() -> int:
    """Ray Serve's proxy port on the session's head: fixed once Serve starts, so one per session."""
    from dljobs.controller.ray_head import free_port

    return free_port()


@pytest.fixture
def serving_settings(settings, serve_port, ray_head):  # type: ignore[no-untyped-def]
    """Settings with the deployer loop on (fast ticks, short drains) and Serve on the session's port;
    Serve is shut down after the test."""
    settings.serving.enabled = True
    settings.serving.interval = 0.3
    settings.serving.http_port = serve_port
    settings.serving.drain_seconds = 3.0
    settings.serving.route_ttl = 0.2
    try:
        yield settings
    finally:
        shut_down_serve(ray_head)


@pytest.fixture
def serving_api(serving_settings):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from dljobs.controller.app import create_app

    with TestClient(create_app(serving_settings, migrate=False)) as client:
        yield client


def shut_down_serve(ray_head) -> None:  # type: ignore[no-untyped-def]
    """Serve's applications hold CPUs of the session's head: a test that deployed some takes them away
    (Serve's REST DELETE shuts Serve down), so that the tests after it find the whole head free."""
    import httpx

    response = httpx.delete(
        f"{ray_head.dashboard_url}/api/serve/applications/",
        headers={"Authorization": f"Bearer {ray_head.token}"},
        timeout=120,
    )
    assert response.status_code in (200, 404), response.text


@pytest.fixture
def api(settings):  # type: ignore[no-untyped-def]
    """A TestClient of the controller app (lifespan run: migrations checked, admin bootstrapped)."""
    from fastapi.testclient import TestClient

    from dljobs.controller.app import create_app

    with TestClient(create_app(settings, migrate=False)) as client:
        yield client


@pytest.fixture
def identities(api):  # type: ignore[no-untyped-def]
    from tests.support.factories import Identities

    return Identities(api, ADMIN_TOKEN)


@pytest.fixture
def live_settings(settings):  # type: ignore[no-untyped-def]
    """Settings with the scheduler and reconciler running, ticking fast."""
    settings.scheduler.enabled = True
    settings.reconciler.enabled = True
    settings.scheduler.capacity_ttl = 0.5
    return settings


@pytest.fixture
def live_api(live_settings):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from dljobs.controller.app import create_app

    with TestClient(create_app(live_settings, migrate=False)) as client:
        yield client
