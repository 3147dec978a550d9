"""The controller SIGKILLed at random moments while jobs are submitted and run, then restarted (three
times); and two controllers on one database. Every acknowledged job exists once, is launched once, and ends
as Ray says it ended; jobs running on Ray while their controller was dead kept running.

Small here (CI has two cores); bench/reliability.py runs the same scenarios at full size (200 and 1,000
jobs) and docs/reliability.md keeps its figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.support.scenarios import controller_kills, two_controllers

JOBS = int(os.environ.get("DLJOBS_TEST_FAULT_JOBS", "24"))
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def test_a_controller_killed_three_times_loses_and_repeats_nothing(  # type: ignore[no-untyped-def]
    clean_database, ray_head, tmp_path: Path
) -> None:
    outcome = controller_kills(ray_head, clean_database, tmp_path, ADMIN_TOKEN, jobs=JOBS, kills=3, seed=7)
    assert len(outcome.kills) == 3
    assert outcome.running_at_kills > 0, "no job was running on Ray while its controller was dead"


def test_two_controllers_share_the_work_and_launch_each_job_once(  # type: ignore[no-untyped-def]
    clean_database, ray_head, tmp_path: Path
) -> None:
    outcome = two_controllers(ray_head, clean_database, tmp_path, ADMIN_TOKEN, jobs=JOBS)
    assert sum(share["launches"] for share in outcome.shares) == JOBS
    assert all(share["launches"] > 0 and share["reconciled"] > 0 for share in outcome.shares), outcome.shares
