"""The models and endpoints pages in headless Chromium against a real controller with no Ray behind it: the
registry's versions and an endpoint's traffic split and figures, written through the API and the database
(nothing is trained or served). Screenshots go to test-artifacts/ui/."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select, update

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.engine import create_engine
from dljobs.controller.db.models import (
    EndpointModel,
    EndpointStatsModel,
    ModelVersionModel,
    RegisteredModelModel,
)
from dljobs.storage import open_store
from tests.controller.ui.conftest import Dashboard
from tests.controller.ui.test_dashboard_e2e import XSS, logged_in, shot, text_of, until
from tests.support.serving import DIGITS_CARD, trained_job

pytestmark = [pytest.mark.browser]

# Training's view of two input features, for drift: x0 is served like this, x1 all in the top bin.
FEATURES = [
    {"name": f"x{i}", "index": i, "bins": [0.0, 4.0, 8.0, 12.0, 16.0], "fractions": [0.25] * 4}
    for i in range(2)
]


def _card() -> dict[str, Any]:
    card = json.loads(json.dumps(DIGITS_CARD))
    card["data"]["feature_summary"] = {"kind": "tabular", "features": FEATURES}
    return card


def _register(dashboard: Dashboard, settings: Any, description: str | None = None) -> dict[str, Any]:
    job = trained_job(dashboard.api, dashboard.admin, settings, name="digits")
    open_store(settings.storage_url).put_bytes(f"jobs/{job['id']}/card.json", json.dumps(_card()).encode())
    body: dict[str, Any] = {"name": "digits", "job": str(job["id"])}
    if description:
        body["description"] = description
    response = dashboard.api.post("/api/v1/models", json=body, headers=dashboard.admin)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _serve_with_figures(database_url: str, endpoint: str) -> None:
    """As if the deployer had rolled v2 out as a 20% canary on v1 and the gateway had measured traffic."""

    async def run() -> None:
        engine = create_engine(database_url)
        async with engine.begin() as connection:
            ids = dict(
                (
                    await connection.execute(
                        select(ModelVersionModel.version, ModelVersionModel.id)
                        .join(RegisteredModelModel, RegisteredModelModel.id == ModelVersionModel.model_id)
                        .where(RegisteredModelModel.name == "digits")
                    )
                ).all()
            )
            await connection.execute(
                update(EndpointModel)
                .where(EndpointModel.name == endpoint)
                .values(
                    status="ready",
                    status_reason=None,
                    stable_version_id=ids[1],
                    canary_version_id=ids[2],
                    canary_percent=20.0,
                    canary_ready=True,
                )
            )
            endpoint_id = await connection.scalar(
                select(EndpointModel.id).where(EndpointModel.name == endpoint)
            )
            now = utcnow() - timedelta(seconds=5)
            rows = [
                # stable: 200 requests, 4 errors; p50 in the 5 ms bucket, p99 in the 100 ms one; inputs alike
                dict(
                    version_id=ids[1],
                    requests=200,
                    errors=4,
                    rejected=1,
                    inputs=200,
                    latency={"5": 150, "10": 40, "100": 10},
                    predictions={"3": 120, "7": 60, XSS: 20},
                    features={"x0": [50, 50, 50, 50], "x1": [50, 50, 50, 50]},
                ),
                # canary: 50 requests, inputs shifted (x1 all in the top bin)
                dict(
                    version_id=ids[2],
                    requests=50,
                    errors=0,
                    rejected=0,
                    inputs=50,
                    latency={"20": 50},
                    predictions={"3": 25, "8": 25},
                    features={"x0": [12, 13, 12, 13], "x1": [0, 0, 0, 50]},
                ),
            ]
            for row in rows:
                await connection.execute(
                    EndpointStatsModel.__table__.insert().values(
                        endpoint_id=endpoint_id, period_end=now, **row
                    )
                )
        await engine.dispose()

    asyncio.run(run())


def test_the_models_and_endpoints_pages_show_versions_traffic_and_figures(
    page: Any, offline_dashboard: tuple[Dashboard, Any]
) -> None:
    dashboard, settings = offline_dashboard
    first = _register(dashboard, settings, description=f"digits classifier {XSS}")
    second = _register(dashboard, settings)
    promoted = dashboard.api.post(
        "/api/v1/models/digits/versions/1/stage", json={"stage": "production"}, headers=dashboard.admin
    )
    assert promoted.status_code == 200, promoted.text
    for name, model in (("digits-live", "digits:1"), ("digits-new", "digits:2")):
        created = dashboard.api.post(
            "/api/v1/endpoints", json={"name": name, "model": model}, headers=dashboard.admin
        )
        assert created.status_code == 201, created.text
    _serve_with_figures(dashboard.database_url, "digits-live")

    logged_in(page, dashboard, "/models")
    until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "section.model tbody tr[data-version]")) == 2)
    panel = text_of(page, "section.model[data-model='digits']")
    assert "production v1" in panel and "latest v2" in panel
    assert f"digits classifier {XSS}" in panel  # the description is text, not markup
    assert page.execute_script("return window.__xss") is None
    assert not page.find_elements(By.CSS_SELECTOR, "main img")
    v1 = text_of(page, "section.model tr[data-version='1']")
    assert "production" in v1 and f"job {first['job_id']}" in v1
    assert "test_accuracy 0.88" in v1 and "val_accuracy 0.9" in v1
    link = page.find_element(By.CSS_SELECTOR, "section.model tr[data-version='2'] a.job-link")
    assert link.get_attribute("href").endswith(f"#/jobs/{second['job_id']}")
    assert "active" in page.find_element(By.CSS_SELECTOR, "#nav a[href='#/models']").get_attribute("class")
    shot(page, "models")

    page.find_element(By.CSS_SELECTOR, "#nav a[href='#/endpoints']").click()
    until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "section.endpoint")) == 2)
    until(
        page,
        lambda d: d.find_elements(
            By.CSS_SELECTOR, "section[data-endpoint='digits-live'] tr[data-version='2']"
        ),
    )
    live = text_of(page, "section[data-endpoint='digits-live']")
    assert "ready" in live and "stable digits:1 80%" in live and "canary digits:2 20%" in live
    stable = text_of(page, "section[data-endpoint='digits-live'] tr[data-version='1']")
    assert "v1 stable" in stable and "200" in stable and "4 (2%)" in stable
    assert "5 ms" in stable and "100 ms" in stable  # p50, p99
    canary = text_of(page, "section[data-endpoint='digits-live'] tr[data-version='2']")
    assert "v2 canary" in canary and "20 ms" in canary
    # class distribution bars: a label holding markup is drawn as SVG text, nothing runs
    bars = page.find_elements(
        By.CSS_SELECTOR, "section[data-endpoint='digits-live'] tr[data-version='1'] svg.classes rect"
    )
    assert len(bars) == 3
    labels = page.execute_script(
        "return [...document.querySelectorAll(\"section[data-endpoint='digits-live'] tr[data-version='1'] "
        'svg.classes title")].map(t => t.textContent)'
    )
    assert labels == ["3", "7", XSS]
    assert page.execute_script("return window.__xss") is None
    assert not page.find_elements(By.CSS_SELECTOR, "main img")
    # drift: the canary's shifted feature stands out, the stable version's does not
    assert "drift-alert" in page.find_element(
        By.CSS_SELECTOR, "section[data-endpoint='digits-live'] tr[data-version='2'] td.drift"
    ).get_attribute("class")
    assert "drift-ok" in page.find_element(
        By.CSS_SELECTOR, "section[data-endpoint='digits-live'] tr[data-version='1'] td.drift"
    ).get_attribute("class")
    assert "(x1)" in canary
    fresh = text_of(page, "section[data-endpoint='digits-new']")
    assert "deploying" in fresh and "canary digits:2 100%" in fresh and "No requests in this window." in fresh
    shot(page, "endpoints")

    # refreshed by polling: new figures show up without a reload
    _more_traffic(dashboard.database_url, "digits-live")
    until(
        page,
        lambda d: (
            "1200" in text_of(d, "section[data-endpoint='digits-live'] tr[data-version='1'] td.requests")
        ),
    )
    shot(page, "endpoints-refreshed")


def _more_traffic(database_url: str, endpoint: str) -> None:
    async def run() -> None:
        engine = create_engine(database_url)
        async with engine.begin() as connection:
            endpoint_id, version_id = (
                await connection.execute(
                    select(EndpointModel.id, EndpointModel.stable_version_id).where(
                        EndpointModel.name == endpoint
                    )
                )
            ).one()
            await connection.execute(
                EndpointStatsModel.__table__.insert().values(
                    endpoint_id=endpoint_id,
                    version_id=version_id,
                    period_end=utcnow(),
                    requests=1000,
                    errors=0,
                    rejected=0,
                    inputs=1000,
                    latency={"5": 1000},
                    predictions={"3": 1000},
                    features={},
                )
            )
        await engine.dispose()

    asyncio.run(run())
