"""The dashboard's files at /ui/: served from the package with a strict CSP, no token needed to load them,
nothing outside the static folder reachable, and the API behind it as locked as before."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dljobs.controller.ui import STATIC_DIR
from tests.conftest import ADMIN_TOKEN

STATIC_FILES = sorted(p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A controller on SQLite with its loops off; no Ray is reached (nothing here launches a job)."""
    from dljobs.controller.app import create_app
    from dljobs.controller.settings import Settings

    tmp = tmp_path_factory.mktemp("ui-mount")
    settings = Settings(
        home=tmp / "home",
        mode="cluster",
        database={"url": f"sqlite+aiosqlite:///{tmp / 'dljobs.db'}"},
        ray={"address": "http://127.0.0.1:9"},
        storage={"url": (tmp / "artifacts").as_uri()},
        auth={"bootstrap_admin_token": ADMIN_TOKEN},
        scheduler={"enabled": False},
        reconciler={"enabled": False},
        notifier={"enabled": False},
    )
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def test_the_root_and_the_bare_prefix_lead_to_the_dashboard(client: TestClient) -> None:
    assert client.get("/").headers["location"].endswith("/ui/")
    assert client.get("/ui").headers["location"].endswith("/ui/")
    page = client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/app.js">' in page.text


def test_every_asset_is_served_with_its_type_and_the_security_headers(client: TestClient) -> None:
    assert {"index.html", "js/app.js", "js/api.js", "css/app.css", "js/pages/index.js"} <= set(STATIC_FILES)
    assert {"js/pages/models.js", "js/pages/endpoints.js"} <= set(STATIC_FILES)
    types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for name in STATIC_FILES:
        response = client.get(f"/ui/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith(types[Path(name).suffix]), name
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"


def test_a_missing_file_or_a_way_out_of_the_folder_is_404_with_the_headers(client: TestClient) -> None:
    for path in (
        "/ui/nope.js",
        "/ui/../__init__.py",
        "/ui/%2e%2e/__init__.py",
        "/ui/js/..%2f..%2f__init__.py",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "mount_dashboard" not in response.text
    assert "content-security-policy" in client.get("/ui/nope.js").headers


def test_the_pages_carry_no_credentials_and_the_api_still_wants_a_token(client: TestClient) -> None:
    for name in STATIC_FILES:
        assert ADMIN_TOKEN not in client.get(f"/ui/{name}").text
    assert client.get("/api/v1/jobs").status_code == 401
    # the dashboard's own login check: /whoami with the header, nothing in the URL
    assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    assert client.get("/ui/", headers={"Authorization": "Bearer wrong"}).status_code == 200


def test_the_scripts_never_write_markup_or_put_the_token_in_a_url() -> None:
    """User data (names, reasons, logs, artifact names) only ever reaches the page as text."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function")
    for path in STATIC_DIR.rglob("*.js"):
        text = path.read_text()
        assert not sinks.search(text), path.name
        assert not re.search(r"[?&](token|access_token)=", text), path.name
        assert "localStorage" not in text, path.name  # the token lives in sessionStorage, for the tab only
    html = (STATIC_DIR / "index.html").read_text()
    assert (
        "<script>" not in html and " style=" not in html and "http://" not in html and "https://" not in html
    )


def test_asset_requests_do_not_add_a_metrics_label_per_file(client: TestClient) -> None:
    for name in STATIC_FILES:
        client.get(f"/ui/{name}")
    client.get("/ui/no-such-file.js")
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).text
    assert not [line for line in metrics.splitlines() if ".js" in line or ".css" in line or "no-such" in line]


def test_the_documented_policy_is_the_one_sent() -> None:
    from dljobs.controller.ui import CONTENT_SECURITY_POLICY

    doc = " ".join((Path(__file__).resolve().parents[3] / "docs" / "dashboard.md").read_text().split())
    assert f"Content-Security-Policy: {CONTENT_SECURITY_POLICY}" in doc


def test_every_page_module_is_listed_and_every_listed_page_exists() -> None:
    """A page is one module in pages/ plus one line in pages/index.js (docs/dashboard.md)."""
    pages = STATIC_DIR / "js" / "pages"
    index = (pages / "index.js").read_text()
    imported = set(re.findall(r'^import (\w+) from "\./(\w+)\.js";$', index, re.MULTILINE))
    modules = {p.stem for p in pages.glob("*.js")} - {"index"}
    assert {module for _, module in imported} == modules
    listed = re.search(r"export const pages = \[([^\]]*)\]", index)
    assert listed is not None
    assert {name.strip() for name in listed.group(1).split(",")} == {name for name, _ in imported}
    for module in modules:
        text = (pages / f"{module}.js").read_text()
        assert "export default {" in text and "path: /^" in text and "render(" in text, module
    for route in ("#/models", "#/endpoints"):
        assert f'href: "{route}"' in index + "".join(p.read_text() for p in pages.glob("*.js")), route
