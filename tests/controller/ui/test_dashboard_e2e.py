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
from tests.support.factories import command_spec, sweep_spec
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


def test_a_sweeps_page_shows_its_trials_and_the_metric_against_each_parameter(
    page: Any, dashboard: Dashboard
) -> None:
    """A sweep asking for more CPUs than the cluster has waits in the queue; its driver's API fills its trials
    in (the job's reporting token), and the page shows them live: best first, and one chart per parameter."""
    spec = sweep_spec(name="ui-sweep", resources={"workers": 1, "cpus_per_worker": 64})
    job = submit(dashboard.api, dashboard.admin, spec)  # type: ignore[arg-type]
    report = job_token(dashboard.database_url, job["id"])

    def trial(number: int, status: str, metric: float | None, **extra: Any) -> dict[str, Any]:
        params = {"training.optimizer.lr": 0.001 * number, "workload.params.hidden": [16 * number]}
        return {"number": number, "status": status, "params": params, "metric": metric, "epochs": 2, **extra}

    def send(*rows: dict[str, Any]) -> None:
        response = dashboard.api.post(
            f"/api/v1/jobs/{job['id']}/trials", json={"trials": list(rows)}, headers=report
        )
        assert response.status_code == 200, response.text

    send(
        trial(1, "succeeded", 0.91),
        trial(2, "stopped", 0.42, epochs=1),
        trial(3, "running", 0.95),
        trial(4, "failed", None, error=f"RuntimeError: {XSS}", attempts=2, epochs=0),
    )
    page.get_log("browser")  # drop what earlier tests logged
    logged_in(page, dashboard, f"/jobs/{job['id']}")
    rows = "#trials-body tbody tr"
    until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) == 4)
    order = page.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(r => r.dataset.trial)", rows
    )
    assert order == ["3", "1", "2", "4"]  # best first by val_accuracy; no metric last
    assert attribute(page, f"{rows}:first-child", "class") == "best"
    assert text_of(page, "#trials-progress") == (
        "3/4 trials done, 1 running, 1 stopped early, 1 failed; best val_accuracy 0.95 (trial 3)"
    )
    headers = page.execute_script(
        "return [...document.querySelectorAll('#trials-body thead th')].map(e => e.textContent)"
    )
    assert headers == ["Trial", "Status", "val_accuracy", "Epochs", "Attempts", "lr", "hidden", "Error"]
    first = text_of(page, f"{rows}:first-child").split("\t")
    assert [cell.strip() for cell in first] == ["3", "running", "0.95", "2", "1", "0.003", "[48]", ""]
    assert XSS in text_of(page, "#trials-body")  # the error, as text ...
    assert page.execute_script("return window.__xss") is None  # ... never run
    # one chart per parameter, in the order of the sweep's space; a point per trial with a metric
    charts = page.execute_script(
        "return [...document.querySelectorAll('#trials-charts svg.scatter')].map(e => e.dataset.param)"
    )
    assert charts == ["training.optimizer.lr", "workload.params.hidden"]
    lr = "#trials-charts svg[data-param='training.optimizer.lr']"
    points = page.execute_script(
        "return Object.fromEntries([...document.querySelectorAll(arguments[0] + ' circle.point')]"
        ".map(c => [c.dataset.trial, [+c.getAttribute('cx'), +c.getAttribute('cy')]]))",
        lr,
    )
    assert sorted(points) == ["1", "2", "3"]
    assert points["1"][0] < points["2"][0] < points["3"][0]  # a larger lr is further right ...
    assert points["3"][1] < points["1"][1] < points["2"][1]  # ... a better metric higher up
    axis = page.execute_script("return document.querySelector(arguments[0]).textContent", f"{lr} .axis-label")
    assert axis == "training.optimizer.lr (log)"  # lr is loguniform in the space
    hidden = "#trials-charts svg[data-param='workload.params.hidden'] .grid text"
    assert {"[16]", "[32]", "[48]"} <= set(
        page.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", hidden
        )
    )
    shot(page, "sweep-trials")

    # live: the running trial ends better; the page follows without a reload
    send(trial(3, "succeeded", 0.97, epochs=2))
    until(page, lambda d: text_of(d, "#trials-progress").startswith("4/4 trials done, 0 running"))
    assert "best val_accuracy 0.97 (trial 3)" in text_of(page, "#trials-progress")
    assert "succeeded" in text_of(page, f"{rows}:first-child")
    shot(page, "sweep-trials-updated")
    dashboard.api.post(f"/api/v1/jobs/{job['id']}/cancel", headers=dashboard.admin)
    assert [e["message"] for e in page.get_log("browser") if e["level"] == "SEVERE"] == []
