"""The dashboard in headless Chromium against a real controller: log in, list and filter jobs, follow a live
job's status and metrics, read a finished job's logs and download its artifact. Screenshots go to
test-artifacts/ui/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import ADMIN_TOKEN
from tests.controller.ui.conftest import SCREENSHOTS, Dashboard
from tests.support.factories import command_spec
from tests.support.jobs import job_token, submit, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.browser]
# A safeguard against a hang, not a performance check: pages poll every few seconds.
UI_WAIT = 120.0
XSS = "<img src=x onerror=window.__xss=1>"


def until(driver: Any, condition: Callable[[Any], Any]) -> Any:
    return WebDriverWait(driver, UI_WAIT, poll_frequency=0.1).until(condition)


def text_of(driver: Any, css: str) -> str:
    """The element's rendered text, read in one step (the pages re-render what changed while polling)."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css
    )


def attribute(driver: Any, css: str, name: str) -> str | None:
    return driver.execute_script(  # type: ignore[no-any-return]
        "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null",
        css,
        name,
    )


def shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def logged_in(driver: Any, dashboard: Dashboard, route: str) -> None:
    """Open a page with the admin token already in the tab's sessionStorage (as the login page leaves it)."""
    driver.get(f"{dashboard.url}/ui/#/login")
    driver.execute_script("sessionStorage.setItem('dljobs.token', arguments[0])", ADMIN_TOKEN)
    driver.get(f"{dashboard.url}/ui/#{route}")


@pytest.fixture(scope="module")
def jobs(dashboard: Dashboard) -> dict[str, dict[str, Any]]:
    """One finished job whose output holds markup, and one still running (a sleep)."""
    finished = submit(
        dashboard.api,  # type: ignore[arg-type]
        dashboard.admin,
        command_spec(
            name="printer", workload={"command": f"echo '{XSS}'; for i in 1 2 3; do echo line $i; done"}
        ),
    )
    running = submit(
        dashboard.api, dashboard.admin, command_spec(name="sleeper", workload={"command": "sleep 300"})
    )  # type: ignore[arg-type]
    return {
        "finished": wait_for(dashboard.api, dashboard.admin, finished["id"]),  # type: ignore[arg-type]
        "running": wait_for(dashboard.api, dashboard.admin, running["id"], {"RUNNING"}),  # type: ignore[arg-type]
    }


def test_login_then_the_jobs_list_filters_live(page: Any, dashboard: Dashboard, jobs: dict[str, Any]) -> None:
    page.get(f"{dashboard.url}/")  # redirected to /ui/, then to the login page (no token in this tab)
    until(page, lambda d: d.find_elements(By.ID, "token"))
    assert page.current_url.endswith("/ui/#/login")
    shot(page, "login")
    page.find_element(By.ID, "token").send_keys("dlj_not-a-real-token")
    page.find_element(By.ID, "login-submit").click()
    until(page, lambda d: "not accepted" in text_of(d, "#login-error"))
    token_box = page.find_element(By.ID, "token")
    token_box.clear()
    token_box.send_keys(ADMIN_TOKEN)
    page.find_element(By.ID, "login-submit").click()
    until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs-body tr[data-job-id]")) == 2)
    assert page.current_url.endswith("#/jobs") and ADMIN_TOKEN not in page.current_url
    assert page.execute_script("return sessionStorage.getItem('dljobs.token')") == ADMIN_TOKEN
    assert page.execute_script("return localStorage.length") == 0 and page.get_cookies() == []
    assert text_of(page, "#who") == "admin (admin)"
    rows = {
        r.get_attribute("data-job-id"): r.text for r in page.find_elements(By.CSS_SELECTOR, "#jobs-body tr")
    }
    assert "SUCCEEDED" in rows[str(jobs["finished"]["id"])] and "RUNNING" in rows[str(jobs["running"]["id"])]
    shot(page, "jobs")

    page.find_element(By.CSS_SELECTOR, "input[name=status][value=RUNNING]").click()
    until(page, lambda d: "status=RUNNING" in d.current_url)
    until(
        page,
        lambda d: (
            [r.get_attribute("data-job-id") for r in d.find_elements(By.CSS_SELECTOR, "#jobs-body tr")]
            == [str(jobs["running"]["id"])]
        ),
    )
    # live: a job submitted now shows up without a reload, once it runs
    third = submit(
        dashboard.api, dashboard.admin, command_spec(name="third", workload={"command": "sleep 300"})
    )  # type: ignore[arg-type]
    wait_for(dashboard.api, dashboard.admin, third["id"], {"RUNNING"})  # type: ignore[arg-type]
    until(page, lambda d: d.find_elements(By.CSS_SELECTOR, f"#jobs-body tr[data-job-id='{third['id']}']"))
    shot(page, "jobs-filtered")
    dashboard.api.post(f"/api/v1/jobs/{third['id']}/cancel", headers=dashboard.admin)

    # a token that stops working sends the tab back to the login page, remembering where it was
    page.execute_script("sessionStorage.setItem('dljobs.token', 'dlj_revoked')")
    until(page, lambda d: "#/login?next=" in d.current_url)
    assert page.execute_script("return sessionStorage.getItem('dljobs.token')") is None


def test_a_running_job_shows_its_metrics_and_status_live(
    page: Any, dashboard: Dashboard, jobs: dict[str, Any]
) -> None:
    job = jobs["running"]
    report = job_token(dashboard.database_url, job["id"])

    def send(steps: range) -> None:
        points = [{"name": "train/loss", "step": s, "value": 2.0 / (s + 1)} for s in steps]
        points += [{"name": "val/loss", "step": s, "value": 2.2 / (s + 1)} for s in steps]
        points += [{"name": "val_accuracy", "step": s, "value": 0.5 + s / 40} for s in steps]
        response = dashboard.api.post(
            f"/api/v1/jobs/{job['id']}/metrics", json={"points": points}, headers=report
        )
        assert response.status_code == 200, response.text

    send(range(5))
    logged_in(page, dashboard, f"/jobs/{job['id']}")
    until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#metrics-body svg.chart")) == 2)
    assert "RUNNING" in text_of(page, ".title-row .status")
    titles = page.execute_script(
        "return [...document.querySelectorAll('#metrics-body h3')].map(e => e.textContent)"
    )
    assert titles == ["loss", "accuracy"]  # train/loss and val/loss share a chart; val_accuracy is alone
    assert "train/loss" in text_of(page, "#metrics-body") and "val/loss" in text_of(page, "#metrics-body")
    before = attribute(page, "#metrics-body path.line", "d")
    send(range(5, 10))
    until(
        page,
        lambda d: d.find_element(By.CSS_SELECTOR, "#metrics-body path.line").get_attribute("d") != before,
    )
    assert "0.725" in text_of(page, "#metrics-body")  # the last val_accuracy, in the legend
    shot(page, "job-running")

    dashboard.api.post(f"/api/v1/jobs/{job['id']}/cancel", headers=dashboard.admin)
    until(page, lambda d: "CANCELLED" in text_of(d, ".title-row .status"))
    assert "CANCELLED" in text_of(page, "#events-body")  # drawn with the status, in the same refresh
    timeline = text_of(page, "#events-body")
    for status in ("QUEUED", "STARTING", "RUNNING", "CANCELLING", "CANCELLED"):
        assert status in timeline
    shot(page, "job-cancelled")


def test_a_finished_job_shows_logs_as_text_and_downloads_its_artifact(
    page: Any, dashboard: Dashboard, jobs: dict[str, Any]
) -> None:
    job = jobs["finished"]
    page.get_log("browser")  # drop what earlier tests logged (a refused token, on purpose)
    logged_in(page, dashboard, f"/jobs/{job['id']}")
    until(page, lambda d: "line 3" in text_of(d, "#logs-body"))
    assert XSS in text_of(page, "#logs-body")  # shown as text ...
    assert page.execute_script("return window.__xss") is None  # ... never run
    assert page.find_elements(By.CSS_SELECTOR, "main img") == []
    assert XSS in text_of(page, "#spec-body")
    assert "SUCCEEDED" in text_of(page, ".title-row .status")
    until(page, lambda d: "logs/attempt-1.log" in text_of(d, "#artifacts-body"))
    shot(page, "job-finished")

    target = page.download_dir / "attempt-1.log"
    page.find_element(By.CSS_SELECTOR, "#artifacts-body button.download").click()
    deadline = time.monotonic() + UI_WAIT
    while not (target.exists() and "line 3" in target.read_text(errors="replace")):
        assert time.monotonic() < deadline, "the download did not arrive"
        time.sleep(0.1)
    # no script error, no request refused, nothing blocked by the Content-Security-Policy
    assert [e["message"] for e in page.get_log("browser") if e["level"] == "SEVERE"] == []
