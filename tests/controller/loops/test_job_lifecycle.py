"""Jobs through the real loops and a real Ray head: success, failure, cancel, timeout, retry."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dljobs.storage import open_store
from tests.conftest import ADMIN_TOKEN
from tests.support.factories import command_spec
from tests.support.jobs import ray_job, submit, transitions, wait_for

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_a_command_job_succeeds_and_keeps_its_logs(live_api, live_settings, ray_head) -> None:  # type: ignore[no-untyped-def]
    job = submit(live_api, ADMIN, command_spec(workload={"command": "echo hello from $DLJOBS_JOB_ID"}))
    done = wait_for(live_api, ADMIN, job["id"])
    assert done["status"] == "SUCCEEDED" and done["attempt"] == 1
    assert done["launch_id"].endswith(f"-{job['id']}-1")
    steps = transitions(live_api, ADMIN, job["id"])
    assert steps[:2] == ["QUEUED", "STARTING"] and steps[-1] == "SUCCEEDED"
    logs = live_api.get(f"/api/v1/jobs/{job['id']}/logs", headers=ADMIN).text
    assert f"hello from {job['id']}" in logs
    archived = (
        open_store(live_settings.storage_url).get_bytes(f"jobs/{job['id']}/logs/attempt-1.log").decode()
    )
    assert f"hello from {job['id']}" in archived
    assert ray_job(ray_head, done["launch_id"])["status"] == "SUCCEEDED"
    # the archived logs are an artifact of the job, with their checksum
    listed = live_api.get(f"/api/v1/jobs/{job['id']}/artifacts", headers=ADMIN).json()
    assert [(a["name"], a["kind"]) for a in listed] == [("logs/attempt-1.log", "logs")]
    assert listed[0]["sha256"] == hashlib.sha256(archived.encode()).hexdigest()


def test_a_failure_reports_the_runners_reason(live_api) -> None:  # type: ignore[no-untyped-def]
    marked = submit(
        live_api,
        ADMIN,
        command_spec(workload={"command": "echo 'dljobs-error: data.source: no such file' >&2; exit 1"}),
    )
    plain = submit(live_api, ADMIN, command_spec(workload={"command": "echo last words; exit 3"}))
    assert wait_for(live_api, ADMIN, marked["id"])["status_reason"] == "data.source: no such file"
    failed = wait_for(live_api, ADMIN, plain["id"])
    assert failed["status"] == "FAILED" and failed["attempt"] == 1  # a user failure is not retried
    assert "last words" in failed["status_reason"]


def test_cancel_stops_the_ray_job(live_api, ray_head) -> None:  # type: ignore[no-untyped-def]
    job = submit(live_api, ADMIN, command_spec(workload={"command": "echo started; sleep 300"}))
    running = wait_for(live_api, ADMIN, job["id"], {"RUNNING"})
    response = live_api.post(f"/api/v1/jobs/{job['id']}/cancel", headers=ADMIN)
    assert response.json()["status"] == "CANCELLING"
    done = wait_for(live_api, ADMIN, job["id"])
    assert done["status"] == "CANCELLED"
    assert ray_job(ray_head, running["launch_id"])["status"] in ("STOPPED", "FAILED")
    assert transitions(live_api, ADMIN, job["id"])[-2:] == ["CANCELLING", "CANCELLED"]


def test_a_job_past_its_timeout_is_stopped(live_api, ray_head) -> None:  # type: ignore[no-untyped-def]
    job = submit(live_api, ADMIN, command_spec(workload={"command": "sleep 300"}, timeout="3s"))
    done = wait_for(live_api, ADMIN, job["id"])
    assert done["status"] == "TIMED_OUT" and done["status_reason"] == "exceeded its timeout of 3s"
    assert ray_job(ray_head, done["launch_id"])["status"] in ("STOPPED", "FAILED")


def test_an_infrastructure_failure_is_retried(live_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # exit code 75 (EX_TEMPFAIL) is how the runner says the platform failed; the second attempt succeeds
    command = 'echo "attempt $DLJOBS_ATTEMPT"; test "$DLJOBS_ATTEMPT" -ge 2 || exit 75'
    job = submit(live_api, ADMIN, command_spec(workload={"command": command}, retries=1))
    done = wait_for(live_api, ADMIN, job["id"])
    assert done["status"] == "SUCCEEDED" and done["attempt"] == 2
    events = live_api.get(f"/api/v1/jobs/{job['id']}/events", headers=ADMIN).json()
    retry = next(e for e in events if e["to_status"] == "RETRYING")
    assert retry["reason"].startswith("infrastructure failure, retry 1 of 1")
    first = live_api.get(f"/api/v1/jobs/{job['id']}/logs", params={"attempt": 1}, headers=ADMIN).text
    assert "attempt 1" in first and "attempt 2" not in first
    assert "attempt 2" in live_api.get(f"/api/v1/jobs/{job['id']}/logs", headers=ADMIN).text


def test_retries_run_out(live_api) -> None:  # type: ignore[no-untyped-def]
    job = submit(live_api, ADMIN, command_spec(workload={"command": "exit 75"}, retries=0))
    done = wait_for(live_api, ADMIN, job["id"])
    assert done["status"] == "FAILED" and "no retries left after 1 attempts" in done["status_reason"]


def test_follow_streams_the_output_until_the_end(live_api) -> None:  # type: ignore[no-untyped-def]
    command = "for i in 1 2 3; do echo line-$i; sleep 0.5; done"
    job = submit(live_api, ADMIN, command_spec(workload={"command": command}))
    with live_api.stream(
        "GET", f"/api/v1/jobs/{job['id']}/logs", params={"follow": "true"}, headers=ADMIN
    ) as response:
        text = "".join(response.iter_text())
    assert [line for line in text.splitlines() if line.startswith("line-")] == ["line-1", "line-2", "line-3"]
    assert live_api.get(f"/api/v1/jobs/{job['id']}", headers=ADMIN).json()["status"] == "SUCCEEDED"
