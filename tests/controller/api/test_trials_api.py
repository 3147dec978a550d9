"""A sweep's trials: rows its driver keeps live with the job's token, listed best first by the sweep's metric
with its progress, trial-numbered metric series, the project's quota bounding its concurrency, and the
project's isolation, as for jobs."""

from __future__ import annotations

from tests.controller.api.test_reports_api import job_token
from tests.support.factories import command_spec, sweep_spec
from tests.support.jobs import submit


def _row(number: int, status: str, metric: float | None, **extra: object) -> dict[str, object]:
    return {
        "number": number,
        "status": status,
        "params": {"training.optimizer.lr": 0.01 * number},
        "metric": metric,
        "epochs": 2,
        **extra,
    }


def test_trials_are_listed_best_first_with_the_sweeps_progress(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    job = submit(api, identities.admin.headers, sweep_spec())
    assert job["kind"] == "sweep"
    token = job_token(settings.database_url, job["id"])
    rows = [
        _row(1, "succeeded", 0.91),
        _row(2, "stopped", 0.42),
        _row(3, "running", 0.95),
        _row(4, "failed", None, error="RuntimeError: boom", attempts=2),
    ]
    response = api.post(f"/api/v1/jobs/{job['id']}/trials", json={"trials": rows}, headers=token)
    assert response.status_code == 200 and response.json() == {"accepted": 4}
    # the latest state wins
    api.post(f"/api/v1/jobs/{job['id']}/trials", json={"trials": [_row(3, "succeeded", 0.96)]}, headers=token)
    found = api.get(f"/api/v1/jobs/{job['name']}/trials", headers=identities.admin.headers).json()
    assert (found["metric"], found["mode"]) == ("val_accuracy", "max")
    assert [t["number"] for t in found["items"]] == [3, 1, 2, 4]
    assert found["items"][0]["status"] == "succeeded" and found["items"][3]["attempts"] == 2
    assert found["progress"] == {
        "trials": 4,
        "done": 4,
        "running": 0,
        "stopped_early": 1,
        "failed": 1,
        "best": 0.96,
        "best_trial": 3,
    }


def test_trial_points_form_their_own_series(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    job = submit(api, identities.admin.headers, sweep_spec())
    token = job_token(settings.database_url, job["id"])
    for trial in (1, 2):
        points = [{"name": "val_accuracy", "step": s, "epoch": s, "value": 0.1 * trial + s} for s in (1, 2)]
        body = {"points": points, "trial": trial}
        assert api.post(f"/api/v1/jobs/{job['id']}/metrics", json=body, headers=token).status_code == 200
    api.post(
        f"/api/v1/jobs/{job['id']}/metrics",
        json={"points": [{"name": "test_accuracy", "step": 9, "value": 0.9}]},
        headers=token,
    )
    url = f"/api/v1/jobs/{job['id']}/metrics"
    second = api.get(url, params={"trial": 2}, headers=identities.admin.headers).json()
    assert second["trial"] == 2 and [p["value"] for p in second["series"]["val_accuracy"]] == [1.2, 2.2]
    own = api.get(url, headers=identities.admin.headers).json()["series"]
    assert list(own) == ["test_accuracy"]


def test_a_job_that_is_not_a_sweep_has_no_trials(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    job = submit(api, identities.admin.headers, command_spec())
    token = job_token(settings.database_url, job["id"])
    response = api.post(
        f"/api/v1/jobs/{job['id']}/trials", json={"trials": [_row(1, "running", 0.5)]}, headers=token
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "not_a_sweep"
    assert api.get(f"/api/v1/jobs/{job['id']}/trials", headers=identities.admin.headers).status_code == 422


def test_trials_are_visible_to_the_project_only(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = identities.project(), identities.project()
    alice, bob = identities.user(mine), identities.user(theirs)
    job = submit(api, alice.headers, sweep_spec(project=mine))
    assert api.get(f"/api/v1/jobs/{job['id']}/trials", headers=alice.headers).status_code == 200
    assert api.get(f"/api/v1/jobs/{job['id']}/trials", headers=bob.headers).status_code == 404
    other = submit(api, alice.headers, sweep_spec(project=mine))
    token = job_token(settings.database_url, other["id"])  # a job's token reports for that job only
    response = api.post(
        f"/api/v1/jobs/{job['id']}/trials", json={"trials": [_row(1, "running", 0.5)]}, headers=token
    )
    assert response.status_code == 404


def test_the_quota_bounds_a_sweeps_concurrency_and_reservation(api, identities) -> None:  # type: ignore[no-untyped-def]
    project = identities.project(max_cpus=3)
    user = identities.user(project)
    spec = sweep_spec(project=project, resources={"workers": 1, "cpus_per_worker": 1})
    job = submit(api, user.headers, spec)
    assert job["spec"]["sweep"]["max_concurrent"] == 3  # 4 trials, room for 3 under the quota
    asked = submit(api, user.headers, sweep_spec(project=project, sweep={"max_concurrent": 2}))
    assert asked["spec"]["sweep"]["max_concurrent"] == 2
    why = api.get(f"/api/v1/jobs/{job['id']}/why", headers=user.headers).json()
    assert why["needs"]["cpus"] == 3.0


def test_cancelling_a_sweep_ends_its_running_trials(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    job = submit(api, identities.admin.headers, sweep_spec())
    token = job_token(settings.database_url, job["id"])
    rows = [_row(1, "succeeded", 0.9), _row(2, "running", 0.5)]
    api.post(f"/api/v1/jobs/{job['id']}/trials", json={"trials": rows}, headers=token)
    assert api.post(f"/api/v1/jobs/{job['id']}/cancel", headers=identities.admin.headers).status_code == 200
    found = api.get(f"/api/v1/jobs/{job['id']}/trials", headers=identities.admin.headers).json()
    assert {t["number"]: t["status"] for t in found["items"]} == {1: "succeeded", 2: "cancelled"}
    # what the dying driver still sends brings no trial back to life
    late = [_row(2, "running", 0.6), _row(3, "retrying", None)]
    response = api.post(f"/api/v1/jobs/{job['id']}/trials", json={"trials": late}, headers=token)
    assert response.status_code == 200
    found = api.get(f"/api/v1/jobs/{job['id']}/trials", headers=identities.admin.headers).json()
    statuses = {t["number"]: t["status"] for t in found["items"]}
    assert statuses == {1: "succeeded", 2: "cancelled", 3: "cancelled"}
    assert found["progress"]["running"] == 0 and found["items"][0]["metric"] == 0.9
