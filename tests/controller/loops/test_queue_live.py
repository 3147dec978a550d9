"""Priorities, quotas and `why`, with the real scheduler on a 2-CPU Ray head."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ADMIN_TOKEN
from tests.support.factories import command_spec
from tests.support.jobs import submit, wait_for

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _gated(gate: Path) -> str:
    """A command that runs until the test creates `gate`: the test decides when it ends."""
    return f"while [ ! -f {gate} ]; do sleep 0.2; done"


def _why(api, job_id: int) -> dict:  # type: ignore[no-untyped-def]
    return api.get(f"/api/v1/jobs/{job_id}/why", headers=ADMIN).json()  # type: ignore[no-any-return]


def test_high_priority_starts_first_and_why_explains(live_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gate = tmp_path / "open"
    blocker = submit(
        live_api, ADMIN, command_spec(workload={"command": _gated(gate)}, resources={"cpus_per_worker": 2})
    )
    wait_for(live_api, ADMIN, blocker["id"], {"RUNNING"})
    low = submit(live_api, ADMIN, command_spec(priority="low", resources={"cpus_per_worker": 2}))
    high = submit(live_api, ADMIN, command_spec(priority="high", resources={"cpus_per_worker": 2}))
    why_high, why_low = _why(live_api, high["id"]), _why(live_api, low["id"])
    assert why_high["position"] == 1 and why_high["blocker"] == "capacity"
    assert "needs 2 CPUs (0 free of 2)" in why_high["message"]
    assert why_low["position"] == 2 and why_low["blocker"] == "ahead" and why_low["ahead"] == [high["id"]]
    assert f"behind job {high['id']}" in why_low["message"]
    gate.touch()
    done_high = wait_for(live_api, ADMIN, high["id"])
    done_low = wait_for(live_api, ADMIN, low["id"])
    assert done_high["started_at"] < done_low["started_at"]
    assert _why(live_api, low["id"])["blocker"] == "not_waiting"


def test_a_quota_holds_its_project_only(live_api, identities, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gate = tmp_path / "open"
    identities.project("alpha", max_jobs=1)
    member = identities.user("alpha", "default")
    first = submit(
        live_api, member.headers, command_spec(project="alpha", workload={"command": _gated(gate)})
    )
    wait_for(live_api, member.headers, first["id"], {"RUNNING"})
    second = submit(live_api, member.headers, command_spec(project="alpha"))
    other = submit(live_api, member.headers, command_spec(project="default"))
    why = live_api.get(f"/api/v1/jobs/{second['id']}/why", headers=member.headers).json()
    assert why["blocker"] == "quota" and why["message"] == "project 'alpha' quota: 1 of max_jobs 1 running"
    # the other project's job is not held by alpha's quota
    assert wait_for(live_api, member.headers, other["id"])["status"] == "SUCCEEDED"
    assert live_api.get(f"/api/v1/jobs/{first['id']}", headers=member.headers).json()["status"] == "RUNNING"
    assert live_api.get(f"/api/v1/jobs/{second['id']}", headers=member.headers).json()["status"] == "QUEUED"
    # and alpha's second job starts once the first is done
    gate.touch()
    assert wait_for(live_api, member.headers, second["id"])["status"] == "SUCCEEDED"
    first_done = live_api.get(f"/api/v1/jobs/{first['id']}", headers=member.headers).json()
    assert first_done["finished_at"] <= wait_for(live_api, member.headers, second["id"])["started_at"]


def test_a_job_larger_than_the_cluster_says_so(live_api) -> None:  # type: ignore[no-untyped-def]
    huge = submit(live_api, ADMIN, command_spec(resources={"workers": 4, "cpus_per_worker": 8}))
    small = submit(live_api, ADMIN, command_spec())
    why = _why(live_api, huge["id"])
    assert why["blocker"] == "cluster" and why["message"] == "needs 32 CPUs but the cluster has 2 in all"
    assert wait_for(live_api, ADMIN, small["id"])["status"] == "SUCCEEDED"
    live_api.post(f"/api/v1/jobs/{huge['id']}/cancel", headers=ADMIN)
