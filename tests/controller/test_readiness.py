"""A controller whose database is not migrated yet answers not ready (the chart's migration job may lag)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from dljobs.controller.app import create_app
from dljobs.controller.settings import Settings


def test_not_ready_until_the_schema_is_migrated(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        mode="cluster",
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
        ray={"address": "http://127.0.0.1:9"},
        storage={"url": tmp_path.as_uri()},
        scheduler={"enabled": False},
        reconciler={"enabled": False},
    )
    with TestClient(create_app(settings, migrate=False)) as client:
        response = client.get("/api/v1/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready" and "not migrated" in body["checks"]["database"]
        assert body["checks"]["ray"] != "ok"
        assert client.get("/api/v1/health").status_code == 200
