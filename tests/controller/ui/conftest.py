"""A real controller over HTTP (uvicorn in a thread, SQLite, the session's Ray head, loops on) and one
headless Chromium for the session; screenshots go to test-artifacts/ui/."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ARTIFACTS

SCREENSHOTS = ARTIFACTS / "ui"


@dataclass
class Dashboard:
    url: str
    database_url: str
    api: httpx.Client
    admin: dict[str, str]


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tests.support.browser import ensure_browser, start_chrome

    ensure_browser()
    downloads = tmp_path_factory.mktemp("downloads")
    driver = start_chrome(downloads, tmp_path_factory.mktemp("chrome-profile"))
    driver.download_dir = downloads  # type: ignore[attr-defined]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    """The browser with an empty tab state; a screenshot of where it ended, named after the test."""
    browser.delete_all_cookies()  # type: ignore[attr-defined]
    yield browser
    browser.save_screenshot(str(SCREENSHOTS / f"{request.node.name}-end.png"))  # type: ignore[attr-defined]
    # leave the page (its live log stream too) before the next test or the server's shutdown
    browser.get("about:blank")  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def dashboard(ray_head: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    from dljobs.controller.settings import Settings
    from tests.support.databases import migrated_database
    from tests.support.served import served

    tmp = tmp_path_factory.mktemp("ui-e2e")
    database_url = migrated_database("sqlite", tmp)
    settings = Settings(
        home=tmp / "home",
        mode="cluster",
        database={"url": database_url},
        ray={"address": ray_head.dashboard_url, "token": ray_head.token},  # type: ignore[attr-defined]
        storage={"url": (tmp / "artifacts").as_uri()},
        auth={"bootstrap_admin_token": ADMIN_TOKEN},
        scheduler={"enabled": True, "interval": 0.2, "capacity_ttl": 0.5},
        reconciler={"enabled": True, "interval": 0.2},
    )
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with served(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield Dashboard(url, database_url, client, admin)


@pytest.fixture(scope="module")
def offline_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dashboard, object]]:
    """A controller on SQLite with every loop off and no Ray behind it (registry and endpoint rows are
    written through the API and the database, nothing launches), and its settings."""
    from dljobs.controller.settings import Settings
    from tests.support.databases import migrated_database
    from tests.support.served import served

    tmp = tmp_path_factory.mktemp("ui-offline")
    database_url = migrated_database("sqlite", tmp)
    settings = Settings(
        home=tmp / "home",
        mode="cluster",
        database={"url": database_url},
        ray={"address": "http://127.0.0.1:9"},
        storage={"url": (tmp / "artifacts").as_uri()},
        auth={"bootstrap_admin_token": ADMIN_TOKEN},
        scheduler={"enabled": False},
        reconciler={"enabled": False},
        notifier={"enabled": False},
        janitor={"enabled": False},
        serving={"enabled": False},
    )
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with served(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield Dashboard(url, database_url, client, admin), settings
