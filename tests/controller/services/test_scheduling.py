"""The queue's rule book (services.scheduling.plan), decision by decision."""

from __future__ import annotations

from datetime import timedelta

from dljobs.controller.db.base import utcnow
from dljobs.controller.launchers.base import Capacity
from dljobs.controller.services.scheduling import QueueState, QuotaLimits, Usage, Waiting, plan

HIGH, NORMAL, LOW = 2, 1, 0


def job(
    job_id: int,
    priority: int = NORMAL,
    cpus: float = 1,
    gpus: float = 0,
    project: int = 1,
    accelerator: str | None = None,
    not_before=None,
) -> Waiting:  # type: ignore[no-untyped-def]
    return Waiting(job_id, project, priority, cpus, gpus, accelerator, not_before)


def state(
    waiting: list[Waiting],
    *,
    used: dict[int, Usage] | None = None,
    quotas: dict[int, QuotaLimits] | None = None,
) -> QueueState:
    ordered = sorted(waiting, key=lambda w: (-w.priority, w.id))
    used = used or {}
    total = Usage(
        sum(u.jobs for u in used.values()),
        sum(u.cpus for u in used.values()),
        sum(u.gpus for u in used.values()),
    )
    return QueueState(ordered, used, total, {}, quotas or {}, {1: "alpha", 2: "beta"})


def by_id(decisions):  # type: ignore[no-untyped-def]
    return {d.job_id: d for d in decisions}


def test_priority_first_then_fifo() -> None:
    decisions = plan(
        state([job(1, LOW), job(2, NORMAL), job(3, HIGH), job(4, NORMAL)]), Capacity(True, cpus=2)
    )
    assert [d.job_id for d in decisions] == [3, 2, 4, 1]
    assert [d.launch for d in decisions] == [True, True, False, False]
    assert [d.position for d in decisions] == [1, 2, 3, 4]


def test_a_job_waiting_for_capacity_holds_those_behind_it() -> None:
    decisions = by_id(
        plan(state([job(1, cpus=4), job(2, cpus=1)], used={2: Usage(jobs=1, cpus=1)}), Capacity(True, cpus=4))
    )
    assert not decisions[1].launch and decisions[1].blocker == "capacity"
    assert decisions[1].message == "waiting for cluster capacity: needs 4 CPUs (3 free of 4)"
    # job 2 would fit, but back-filling past job 1 could starve it
    assert not decisions[2].launch and decisions[2].blocker == "ahead"
    assert "behind job 1" in decisions[2].message and decisions[2].ahead == (1,)


def test_a_job_larger_than_the_cluster_holds_nobody() -> None:
    decisions = by_id(plan(state([job(1, cpus=64), job(2, cpus=1)]), Capacity(True, cpus=2)))
    assert decisions[1].blocker == "cluster"
    assert decisions[1].message == "needs 64 CPUs but the cluster has 2 in all"
    assert decisions[2].launch


def test_quota_holds_only_its_own_project() -> None:
    decisions = by_id(
        plan(
            state(
                [job(1, project=1), job(2, project=1), job(3, project=2)],
                used={1: Usage(jobs=1, cpus=1)},
                quotas={1: QuotaLimits(max_jobs=1)},
            ),
            Capacity(True, cpus=8),
        )
    )
    assert decisions[1].blocker == "quota" and decisions[2].blocker == "quota"
    assert decisions[1].message == "project 'alpha' quota: 1 of max_jobs 1 running"
    assert decisions[3].launch


def test_quota_counts_the_jobs_this_plan_launches() -> None:
    decisions = plan(
        state([job(1, cpus=2), job(2, cpus=2), job(3, cpus=2)], quotas={1: QuotaLimits(max_cpus=4)}),
        Capacity(True, cpus=16),
    )
    assert [d.launch for d in decisions] == [True, True, False]
    assert decisions[2].message == "project 'alpha' quota: needs 2 CPUs, 4 of max_cpus 4 in use"


def test_gpu_quota_and_accelerator_types() -> None:
    capacity = Capacity(True, cpus=32, gpus=4, accelerators={"A100": 2, "H100": 2})
    decisions = by_id(
        plan(
            state(
                [
                    job(1, gpus=2, accelerator="H100"),
                    job(2, gpus=1, accelerator="H100"),
                    job(3, gpus=1, accelerator="V100"),
                ]
            ),
            capacity,
        )
    )
    assert decisions[1].launch
    assert decisions[2].blocker == "capacity" and "H100 GPUs (0 free)" in decisions[2].message
    assert decisions[3].blocker == "cluster" and "types: A100, H100" in decisions[3].message
    gpu_quota = plan(state([job(1, gpus=1)], quotas={1: QuotaLimits(max_gpus=0)}), capacity)
    assert gpu_quota[0].blocker == "quota" and "max_gpus 0" in gpu_quota[0].message


def test_nothing_launches_while_the_cluster_is_unreachable() -> None:
    decisions = plan(state([job(1)]), Capacity(False, message="connection refused"))
    assert decisions[0].blocker == "cluster" and "connection refused" in decisions[0].message


def test_a_retry_waits_for_its_backoff() -> None:
    later = utcnow() + timedelta(seconds=30)
    decisions = by_id(plan(state([job(1, not_before=later), job(2)]), Capacity(True, cpus=1)))
    assert decisions[1].blocker == "backoff" and decisions[2].launch


def test_running_jobs_use_capacity() -> None:
    decisions = plan(state([job(1, cpus=2)], used={1: Usage(jobs=1, cpus=1)}), Capacity(True, cpus=2))
    assert decisions[0].blocker == "capacity" and decisions[0].free == {"cpus": 1, "gpus": 0}
