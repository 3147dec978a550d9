"""`dljobs trials JOB` and the sweep line of `dljobs status`, run as a user runs them (the real CLI in its
own process) against a controller serving real HTTP, whose trial rows are sent through the API a sweep's
driver uses (the job's reporting token)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.runner import run_cli
from tests.conftest import ADMIN_TOKEN
from tests.support.factories import sweep_spec
from tests.support.jobs import job_token, submit
from tests.support.served import served


@pytest.fixture
def url(settings: Any, api: Any) -> Iterator[str]:  # the TestClient is up first: the schema is checked
    with served(settings) as base:
        yield base


def _row(number: int, status: str, metric: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "number": number,
        "status": status,
        "params": {"training.optimizer.lr": 0.001 * number, "workload.params.hidden": [16 * number]},
        "metric": metric,
        "epochs": 2,
        **extra,
    }


def _cli(args: list[str], home: Path, url: str) -> Any:
    result = run_cli(args, home, DLJOBS_URL=url, DLJOBS_TOKEN=ADMIN_TOKEN)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result


@pytest.fixture
def sweep(api: Any, identities: Any, settings: Any) -> dict[str, Any]:
    """A sweep of 4 trials: 1 succeeded, 2 stopped early, 3 still running (the best so far), 4 failed
    after a retry; trials 1 and 3 sent their val_accuracy by epoch."""
    job = submit(api, identities.admin.headers, sweep_spec(name="cli-sweep"))
    token = job_token(settings.database_url, job["id"])
    rows = [
        _row(1, "succeeded", 0.91),
        _row(2, "stopped", 0.42, epochs=1),
        _row(3, "running", 0.95),
        _row(4, "failed", None, error="RuntimeError: boom", attempts=2, epochs=0),
    ]
    response = api.post(f"/api/v1/jobs/{job['id']}/trials", json={"trials": rows}, headers=token)
    assert response.status_code == 200, response.text
    for trial, values in ((1, [0.6, 0.91]), (3, [0.7, 0.8, 0.95])):
        points = [
            {"name": "val_accuracy", "step": e, "epoch": e, "value": v} for e, v in enumerate(values, 1)
        ]
        body = {"points": points, "trial": trial}
        assert api.post(f"/api/v1/jobs/{job['id']}/metrics", json=body, headers=token).status_code == 200
    return {"job": job, "token": token}


def test_trials_lists_the_sweeps_trials_best_first(sweep: dict[str, Any], url: str, tmp_path: Path) -> None:
    out = _cli(["trials", "cli-sweep"], tmp_path, url).stdout
    lines = out.splitlines()
    assert lines[0] == (
        f"sweep {sweep['job']['id']}: 3/4 trials done, 1 running, 1 stopped early, 1 failed; "
        "best val_accuracy 0.95 (trial 3)"
    )
    header = lines[1].split()
    assert header == ["TRIAL", "STATUS", "VAL_ACCURACY", "EPOCHS", "lr", "hidden"]  # by path
    table = [line.split() for line in lines[2:6]]
    assert [row[0] for row in table] == ["3", "1", "2", "4"]  # best first; no metric last
    assert table[0] == ["3", "running", "0.95", "2", "0.003", "[48]"]
    assert table[2][:4] == ["2", "stopped", "0.42", "1"]
    assert lines[5].split()[:5] == ["4", "failed", "(2", "attempts)", "-"]
    # the learning curves of the best trials that sent any
    curves = [line for line in lines if line.startswith("trial ")]
    assert [line.split(":")[0] for line in curves] == ["trial 3", "trial 1"]
    assert all("val_accuracy by epoch" in line for line in curves)


def test_trials_as_json_is_the_apis_list(sweep: dict[str, Any], url: str, tmp_path: Path) -> None:
    found = json.loads(_cli(["trials", "cli-sweep", "-o", "json"], tmp_path, url).stdout)
    assert (found["job_id"], found["metric"], found["mode"]) == (sweep["job"]["id"], "val_accuracy", "max")
    assert [t["number"] for t in found["items"]] == [3, 1, 2, 4]
    assert found["items"][0]["params"] == {"training.optimizer.lr": 0.003, "workload.params.hidden": [48]}
    assert found["items"][3]["error"] == "RuntimeError: boom" and found["items"][3]["attempts"] == 2
    assert found["progress"] == {
        "trials": 4,
        "done": 3,
        "running": 1,
        "stopped_early": 1,
        "failed": 1,
        "best": 0.95,
        "best_trial": 3,
    }


def test_status_of_a_sweep_shows_its_progress_as_trials_end(
    sweep: dict[str, Any], url: str, api: Any, tmp_path: Path
) -> None:
    def sweep_line() -> str:
        out = _cli(["status", "cli-sweep"], tmp_path, url).stdout
        found = [line.strip() for line in out.splitlines() if line.strip().startswith("sweep:")]
        assert len(found) == 1, out
        return found[0]

    assert sweep_line() == (
        "sweep:     3/4 trials done, 1 running, 1 stopped early, 1 failed; best val_accuracy 0.95 (trial 3)"
    )
    job_id = sweep["job"]["id"]
    ended = {"trials": [_row(3, "succeeded", 0.97)]}
    assert api.post(f"/api/v1/jobs/{job_id}/trials", json=ended, headers=sweep["token"]).status_code == 200
    assert sweep_line() == (
        "sweep:     4/4 trials done, 0 running, 1 stopped early, 1 failed; best val_accuracy 0.97 (trial 3)"
    )
    data = json.loads(_cli(["status", "cli-sweep", "-o", "json"], tmp_path, url).stdout)
    assert data["kind"] == "sweep" and data["status"] == "QUEUED"
    assert data["sweep"] == {
        "trials": 4,
        "done": 4,
        "running": 0,
        "stopped_early": 1,
        "failed": 1,
        "best": 0.97,
        "best_trial": 3,
    }


def test_trials_of_a_job_that_is_not_a_sweep_is_one_line(
    api: Any, identities: Any, url: str, tmp_path: Path
) -> None:
    from tests.support.factories import command_spec

    job = submit(api, identities.admin.headers, command_spec(name="plain"))
    result = run_cli(["trials", str(job["id"])], tmp_path, DLJOBS_URL=url, DLJOBS_TOKEN=ADMIN_TOKEN)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "sweep" in lines[0], result.stderr


def test_metrics_of_a_sweep_are_its_best_trials_or_the_one_named(
    sweep: dict[str, Any], url: str, tmp_path: Path
) -> None:
    out = _cli(["metrics", "cli-sweep", "--plot", ""], tmp_path, url).stdout.splitlines()
    assert out[0] == f"sweep {sweep['job']['id']}: trial 3, the best so far (--trial N for another)"
    row = next(line.split() for line in out if line.split()[:1] == ["val_accuracy"])
    assert row[:5] == ["val_accuracy", "0.95", "0.7", "0.95", "3"]  # last, min, max, points of trial 3

    named = _cli(["metrics", "cli-sweep", "--trial", "1", "-o", "json"], tmp_path, url).stdout
    found = json.loads(named)
    assert found["trial"] == 1
    assert [p["value"] for p in found["series"]["val_accuracy"]] == [0.6, 0.91]

    none = _cli(["metrics", "cli-sweep", "--trial", "2"], tmp_path, url).stdout
    assert none.strip() == f"trial 2 of job {sweep['job']['id']} has reported no metrics yet"


def test_following_a_sweep_prints_its_progress_each_time_it_changes(
    sweep: dict[str, Any], url: str, api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from dljobs.cli.follow import _print_events
    from dljobs.client.http import Client

    said: list[str] = []

    def progress_lines(count: int) -> list[str]:
        deadline = time.monotonic() + 60  # a safeguard against a hang, not a performance check
        while len(said) < count and time.monotonic() < deadline:
            said.extend(line for line in capsys.readouterr().err.splitlines() if line.startswith("sweep:"))
            time.sleep(0.1)
        return said

    done = threading.Event()
    job_id = sweep["job"]["id"]
    watcher = threading.Thread(
        target=_print_events, args=(Client(url, ADMIN_TOKEN), job_id, done), kwargs={"sweep": True}
    )
    watcher.start()
    try:
        assert progress_lines(1) == [
            "sweep: 3/4 trials done, 1 running, 1 stopped early, 1 failed; best val_accuracy 0.95 (trial 3)"
        ]
        ended = {"trials": [_row(3, "succeeded", 0.97)]}
        posted = api.post(f"/api/v1/jobs/{job_id}/trials", json=ended, headers=sweep["token"])
        assert posted.status_code == 200
        assert progress_lines(2)[1] == (
            "sweep: 4/4 trials done, 0 running, 1 stopped early, 1 failed; best val_accuracy 0.97 (trial 3)"
        )
        time.sleep(1.5)  # more polls, nothing new: nothing more is said
        assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("sweep:")]
    finally:
        done.set()
        watcher.join(timeout=30)
