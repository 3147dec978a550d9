"""Sweeps through the real loops, a served controller (the driver sends its trial rows to it) and the
session's Ray head, with tiny custom-code trials whose behaviour each point decides: cancelling a running
sweep stops every trial, and a trial that keeps failing is marked failed while the sweep goes on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dljobs.spec.job import BUNDLE_PREFIX
from tests.conftest import ADMIN_TOKEN
from tests.support.jobs import ray_job, submit, transitions, wait_for

pytestmark = pytest.mark.ray
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# A safeguard against a hang, not a performance check.
WAIT_LIMIT = 600.0

TRAIN_PY = """
import time
from pathlib import Path

from dljobs.workloads import api


def train_loop(config):
    x = config["x"]
    with open(config["starts"], "a") as log:  # a line per trial start, for the tests to count
        log.write(x + "\\n")
    if x == "bad":
        raise ValueError("this point cannot train")
    slow = x == "slow"
    if x == "once":  # slow the first time only
        marker = Path(config["starts"] + ".once")
        slow = not marker.exists()
        marker.touch()
    epochs = 600 if slow else 1
    for epoch in range(1, epochs + 1):
        api.report({"epoch": epoch, "score": 0.5 + epoch / 10000})
        if slow:
            time.sleep(1)
"""


@pytest.fixture(scope="module")
def controller(ray_head: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A cluster-mode controller on SQLite over HTTP, loops on, with the trials' code uploaded."""
    from dljobs.client.bundles import build_bundle
    from dljobs.controller.settings import Settings
    from tests.support.databases import migrated_database
    from tests.support.served import served

    tmp = tmp_path_factory.mktemp("sweep-live")
    settings = Settings(
        home=tmp / "home",
        mode="cluster",
        database={"url": migrated_database("sqlite", tmp)},
        ray={"address": ray_head.dashboard_url, "token": ray_head.token},
        storage={"url": (tmp / "artifacts").as_uri()},
        auth={"bootstrap_admin_token": ADMIN_TOKEN},
        scheduler={"enabled": True, "interval": 0.2, "capacity_ttl": 0.5},
        reconciler={"enabled": True, "interval": 0.2},
    )
    code = tmp / "code"
    code.mkdir()
    (code / "train.py").write_text(TRAIN_PY)
    bundle = build_bundle(code)
    with served(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = client.put(
            f"/api/v1/bundles/{bundle.sha256}",
            content=bundle.data,
            headers={**ADMIN, "Content-Type": "application/zip"},
        )
        assert response.status_code in (200, 201), response.text
        client.code = BUNDLE_PREFIX + bundle.sha256  # type: ignore[attr-defined]
        yield client


def custom_sweep(
    client: httpx.Client, name: str, points: list[str], starts: Path, retries: int = 0, **sweep: Any
) -> dict[str, Any]:
    """A grid sweep over the code's `x`; each trial start adds a line to the file `starts`."""
    code = client.code  # type: ignore[attr-defined]
    return {
        "name": name,
        "workload": {
            "code": code,
            "entrypoint": "train.py:train_loop",
            "params": {"x": "good", "starts": str(starts)},
        },
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "retries": retries,
        "sweep": {
            "metric": "score",
            "mode": "max",
            "algorithm": "grid",
            "trials": len(points),
            "space": {"workload.params.x": {"grid": points}},
            **sweep,
        },
    }


def trials_of(client: httpx.Client, job_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/{job_id}/trials", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def until_trials(client: httpx.Client, job_id: int, check: Any) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        found = trials_of(client, job_id)
        if check(found["items"]):
            return found
        job = client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN).json()
        assert time.monotonic() < deadline and job["status"] in ("QUEUED", "STARTING", "RUNNING"), (
            job,
            found,
        )
        time.sleep(0.5)


def _actors(ray_head: Any) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{ray_head.dashboard_url}/api/v0/actors",
        params={"limit": 10000, "detail": "true"},
        headers={"Authorization": f"Bearer {ray_head.token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["result"]["result"]  # type: ignore[no-any-return]


def alive_actors(ray_head: Any, ray_job_id: str) -> list[str]:
    """The class names of the Ray job's actors still alive, by Ray's state API. Detached actors (Ray's own
    cluster-wide singletons, such as Train's autoscaling coordinator) outlive any job by design."""
    return [
        a["class_name"]
        for a in _actors(ray_head)
        if a.get("job_id") == ray_job_id and a.get("state") != "DEAD" and not a.get("is_detached")
    ]


def test_cancelling_a_running_sweep_stops_every_trial(
    controller: httpx.Client, ray_head: Any, tmp_path: Path
) -> None:
    spec = custom_sweep(controller, "sweep-cancel", ["slow", "slow"], tmp_path / "starts", max_concurrent=2)
    job = submit(controller, ADMIN, spec)  # type: ignore[arg-type]
    # both trials running and reporting, each in a TorchTrainer of its own
    until_trials(
        controller, job["id"], lambda items: len(items) == 2 and all(t["epochs"] >= 1 for t in items)
    )
    running = controller.get(f"/api/v1/jobs/{job['id']}", headers=ADMIN).json()
    assert running["status"] == "RUNNING"
    launched = ray_job(ray_head, running["launch_id"])
    assert launched is not None and launched["job_id"]
    alive = alive_actors(ray_head, launched["job_id"])  # each trial: a Train controller and its worker
    assert alive.count("TrainController") == 2 and alive.count("RayTrainWorker") == 2, alive

    assert controller.post(f"/api/v1/jobs/{job['id']}/cancel", headers=ADMIN).json()["status"] == "CANCELLING"
    done = wait_for(controller, ADMIN, job["id"])  # type: ignore[arg-type]
    assert done["status"] == "CANCELLED" and done["attempt"] == 1
    assert transitions(controller, ADMIN, job["id"])[-2:] == ["CANCELLING", "CANCELLED"]  # type: ignore[arg-type]
    assert ray_job(ray_head, running["launch_id"])["status"] in ("STOPPED", "FAILED")  # type: ignore[index]
    found = trials_of(controller, job["id"])
    assert [t["status"] for t in found["items"]] == ["cancelled", "cancelled"]
    assert found["progress"]["running"] == 0
    deadline = time.monotonic() + WAIT_LIMIT  # Ray reaps a dead driver's actors shortly after it
    while left := alive_actors(ray_head, launched["job_id"]):
        assert time.monotonic() < deadline, left
        time.sleep(0.5)
    # what the driver may still send while it dies does not bring a trial back to life
    time.sleep(2)
    assert [t["status"] for t in trials_of(controller, job["id"])["items"]] == ["cancelled", "cancelled"]


def test_a_failing_trial_is_retried_then_failed_and_the_sweep_goes_on(
    controller: httpx.Client, tmp_path: Path
) -> None:
    starts = tmp_path / "starts"
    spec = custom_sweep(controller, "sweep-fail", ["good", "bad"], starts, max_concurrent=2, trial_retries=1)
    job = submit(controller, ADMIN, spec)  # type: ignore[arg-type]
    done = wait_for(controller, ADMIN, job["id"])  # type: ignore[arg-type]
    found = trials_of(controller, job["id"])
    assert done["status"] == "SUCCEEDED", (done["status_reason"], found)
    by_point = {t["params"]["workload.params.x"]: t for t in found["items"]}
    good, bad = by_point["good"], by_point["bad"]
    assert good["status"] == "succeeded" and good["metric"] == pytest.approx(0.5001)
    assert bad["status"] == "failed" and bad["metric"] is None
    assert bad["attempts"] == 2  # trial_retries: 1
    assert "this point cannot train" in (bad["error"] or "")
    assert found["progress"]["failed"] == 1 and found["progress"]["best_trial"] == good["number"]
    card = controller.get(f"/api/v1/jobs/{job['id']}/artifacts", headers=ADMIN).json()
    assert {"card.json", "sweep.json", "sweep.png"} <= {a["name"] for a in card}
    assert sorted(starts.read_text().split()) == ["bad", "bad", "good"]


def _kill_driver(ray_head: Any, launch_id: str) -> None:
    """SIGKILL the Ray job's supervisor actor and its driver at once, as losing their node would: Ray marks
    the job failed with JOB_SUPERVISOR_ACTOR_DIED, which the controller retries."""
    import contextlib
    import os
    import signal

    info = ray_job(ray_head, launch_id)
    assert info is not None and info["driver_info"], info
    supervisors = [
        a["pid"]
        for a in _actors(ray_head)
        if a.get("class_name") == "JobSupervisor"
        and launch_id in (a.get("name") or "")
        and a["state"] == "ALIVE"
    ]
    assert len(supervisors) == 1, supervisors
    for pid in (supervisors[0], int(info["driver_info"]["pid"])):
        with contextlib.suppress(ProcessLookupError):  # the driver may go with its supervisor
            os.kill(pid, signal.SIGKILL)


def test_a_sweep_whose_driver_dies_resumes_without_rerunning_finished_trials(
    controller: httpx.Client, ray_head: Any, tmp_path: Path
) -> None:
    starts = tmp_path / "starts"
    spec = custom_sweep(controller, "sweep-resume", ["good", "once"], starts, retries=1, max_concurrent=1)
    job = submit(controller, ADMIN, spec)  # type: ignore[arg-type]

    def first_done_second_going(items: list[dict[str, Any]]) -> bool:
        by_point = {t["params"]["workload.params.x"]: t for t in items}
        good, once = by_point.get("good"), by_point.get("once")
        # Tune snapshots its experiment at least every 10 s: give it time to record the first trial's end
        return bool(good and good["status"] == "succeeded" and once and once["epochs"] >= 15)

    until_trials(controller, job["id"], first_done_second_going)
    first = controller.get(f"/api/v1/jobs/{job['id']}", headers=ADMIN).json()
    assert first["attempt"] == 1
    _kill_driver(ray_head, first["launch_id"])

    done = wait_for(controller, ADMIN, job["id"])  # type: ignore[arg-type]
    assert done["status"] == "SUCCEEDED" and done["attempt"] == 2, done["status_reason"]
    events = controller.get(f"/api/v1/jobs/{job['id']}/events", headers=ADMIN).json()
    retry = next(e for e in events if e["to_status"] == "RETRYING")
    assert retry["reason"].startswith("infrastructure failure, retry 1 of 1"), retry
    second = controller.get(f"/api/v1/jobs/{job['id']}/logs", params={"attempt": 2}, headers=ADMIN).text
    assert "resuming the sweep" in second
    # the finished trial ran once; the one cut short ran again, under its own number
    assert starts.read_text().split() == ["good", "once", "once"]
    found = trials_of(controller, job["id"])
    assert {(t["number"], t["params"]["workload.params.x"], t["status"]) for t in found["items"]} == {
        (1, "good", "succeeded"),
        (2, "once", "succeeded"),
    }
    assert found["progress"]["done"] == 2 and found["progress"]["trials"] == 2
