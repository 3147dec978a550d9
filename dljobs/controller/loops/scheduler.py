"""The scheduler: plans the queue (services.scheduling) and launches what fits.

Every controller runs the scheduler. A pass plans the queue and claims what it launches in one transaction
that holds the planning lock, so passes run one at a time, each seeing the claims of the one before, and
quotas and capacity are never counted twice; the launch calls to Ray, the slow part, are then made by the
controller whose pass claimed the jobs, so they spread over the controllers. Each claimed job holds a row
lease until Ray has it, and the launch id is deterministic, so a launch is never made twice even across
crashes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.leasing import confirm_launch, guarded_update, serialize
from dljobs.controller.db.meta import installation_id
from dljobs.controller.db.models import JobModel
from dljobs.controller.launchers.base import Capacity, Launcher, LaunchError
from dljobs.controller.loops.base import Loop
from dljobs.controller.services.auth import JOB_TOKEN_PREFIX, hash_token, new_token
from dljobs.controller.services.launching import build_request, fail_or_retry, resolve_init_from
from dljobs.controller.services.scheduling import load_queue_state, plan
from dljobs.controller.services.transitions import change_status
from dljobs.controller.settings import Settings
from dljobs.spec.runtime import launch_id
from dljobs.spec.status import JobStatus
from dljobs.storage import ArtifactStore, StorageError

log = logging.getLogger("dljobs.scheduler")
LAUNCH_CONCURRENCY = 8


class CapacityCache:
    """The cluster's size, read from the launcher at most every `ttl` seconds."""

    def __init__(self, launcher: Launcher, ttl: float) -> None:
        self.launcher = launcher
        self.ttl = ttl
        self._value: Capacity | None = None
        self._read_at = 0.0

    async def get(self) -> Capacity:
        if self._value is None or not self._value.ready or time.monotonic() - self._read_at > self.ttl:
            self._value = await self.launcher.capacity()
            self._read_at = time.monotonic()
        return self._value

    @property
    def last(self) -> Capacity | None:
        """The last size read, without asking Ray (the API never waits on it)."""
        return self._value if self._value is not None and self._value.ready else None


class Scheduler(Loop):
    name = "scheduler"

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        launcher: Launcher,
        store: ArtifactStore,
        owner: str,
        on_launched: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(settings.scheduler.interval, settings.scheduler.enabled)
        self.settings = settings
        self.sessions = sessions
        self.launcher = launcher
        self.store = store
        self.owner = owner
        self.capacity = CapacityCache(launcher, settings.scheduler.capacity_ttl)
        self.on_launched = on_launched
        self.installation: str | None = None

    async def tick(self) -> None:
        if self.installation is None:
            self.installation = await installation_id(self.sessions)
        capacity = await self.capacity.get()
        claimed = await self._claim(capacity)
        if not claimed:
            return
        gate = asyncio.Semaphore(LAUNCH_CONCURRENCY)

        async def launch(item: tuple[JobModel, str, str]) -> None:
            async with gate:
                await self.launch(*item)

        await asyncio.gather(*(launch(item) for item in claimed))
        self.on_launched()

    async def _claim(self, capacity: Capacity) -> list[tuple[JobModel, str, str]]:
        """Move every job the plan launches to STARTING under a row lease, in one transaction."""
        claimed = []
        async with self.sessions() as session, session.begin():
            await serialize(session, "scheduler")
            decisions = plan(await load_queue_state(session), capacity)
            launch_ids = [d.job_id for d in decisions if d.launch]
            if not launch_ids:
                return []
            jobs = {
                j.id: j for j in await session.scalars(select(JobModel).where(JobModel.id.in_(launch_ids)))
            }
            now = utcnow()
            for job_id in launch_ids:
                job = jobs[job_id]
                lease = new_token("")[:32]
                report_token = new_token(JOB_TOKEN_PREFIX)
                attempt = job.attempt + 1
                ok = await change_status(
                    session,
                    job,
                    JobStatus.STARTING,
                    f"launching attempt {attempt} on Ray",
                    attempt=attempt,
                    launch_id=launch_id(self.installation or "", job.id, attempt),
                    launched_at=None,
                    not_before=None,
                    started_at=now,
                    report_token_hash=hash_token(report_token),
                    lease_owner=self.owner,
                    lease_token=lease,
                    lease_expires_at=now + timedelta(seconds=self.settings.reconciler.lease_seconds),
                )
                if ok:
                    claimed.append((job, lease, report_token))
        return claimed

    async def launch(self, job: JobModel, lease: str, report_token: str) -> None:
        """Submit one claimed job to the launcher and record the outcome under the lease.

        A refusal fails the job. Any other failure is ambiguous (Ray may have accepted the job before the
        connection broke): the job stays STARTING under the same launch id, and the reconciler confirms or
        repeats the launch, so it never runs twice.
        """
        try:
            async with self.sessions() as session:
                init_from = await resolve_init_from(session, job)
            request = await build_request(job, self.settings, self.store, report_token, init_from)
            await self.launcher.submit(request)
        except (LaunchError, StorageError) as exc:
            log.warning("launch of job %s failed: %s", job.id, exc)
            refused = isinstance(exc, LaunchError) and not exc.infrastructure
            if self.metrics is not None:
                self.metrics.launch_errors.labels("refused" if refused else "infrastructure").inc()
            async with self.sessions() as session, session.begin():
                if refused:
                    current = await session.get(JobModel, job.id)
                    if current is not None and current.lease_token == lease:
                        await fail_or_retry(
                            session, current, f"launch refused: {exc}", infrastructure=False, held_lease=lease
                        )
                else:
                    await guarded_update(
                        session,
                        job.id,
                        lease,
                        status_reason=f"launch not confirmed, retrying: {exc}",
                        lease_owner=None,
                        lease_token=None,
                        lease_expires_at=None,
                    )
            return
        async with self.sessions() as session, session.begin():
            await confirm_launch(session, job.id, lease)
        if self.metrics is not None:
            self.metrics.launches.inc()
