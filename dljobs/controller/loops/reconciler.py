"""The reconciler: keeps the database true to Ray.

Each tick leases a batch of launched jobs, asks the launcher how each is doing (outside any transaction),
and applies what it learnt with updates guarded by the lease: RUNNING, finished, failed and retried,
timed out, cancelled. It also finishes launches a crashed controller left half done, and archives each
attempt's logs to the artifact store so a job's history outlives its Ray cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.leasing import claim_jobs, confirm_launch, guarded_update, release
from dljobs.controller.db.models import JobModel
from dljobs.controller.launchers.base import Launcher, LaunchError, LaunchState, LaunchStatus
from dljobs.controller.loops.base import Loop
from dljobs.controller.services import endpoints, registry
from dljobs.controller.services.auth import JOB_TOKEN_PREFIX, hash_token, new_token
from dljobs.controller.services.launching import (
    build_request,
    fail_or_retry,
    failure_reason,
    job_prefix,
    log_key,
    resolve_init_from,
)
from dljobs.controller.services.reports import read_manifest, register_artifacts
from dljobs.controller.services.transitions import change_status
from dljobs.controller.settings import Settings
from dljobs.spec import api
from dljobs.spec.durations import format_duration
from dljobs.spec.status import ACTIVE, JobStatus
from dljobs.storage import ArtifactStore, StorageError

log = logging.getLogger("dljobs.reconciler")
S = JobStatus
CONCURRENCY = 16


class Reconciler(Loop):
    name = "reconciler"

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        launcher: Launcher,
        store: ArtifactStore,
        owner: str,
    ) -> None:
        super().__init__(settings.reconciler.interval, settings.reconciler.enabled)
        self.settings = settings
        self.sessions = sessions
        self.launcher = launcher
        self.store = store
        self.owner = owner

    async def tick(self) -> None:
        config = self.settings.reconciler
        async with self.sessions() as session, session.begin():
            claimed = await claim_jobs(
                session,
                [JobModel.status.in_([s.value for s in ACTIVE])],
                self.owner,
                config.lease_seconds,
                config.batch_size,
            )
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(job: JobModel, lease: str) -> None:
            async with gate:
                try:
                    await self.reconcile(job, lease)
                except Exception:
                    log.exception("reconciling job %s failed", job.id)
                    async with self.sessions() as session, session.begin():
                        await release(session, job.id, lease)

        await asyncio.gather(*(one(job, lease) for job, lease in claimed))

    async def reconcile(self, job: JobModel, lease: str) -> None:
        status = S(job.status)
        if self.metrics is not None:
            self.metrics.reconciled.inc()
        if status == S.STARTING and job.launched_at is None:
            # a launch left half done by a controller that died: adopt it, or make it (same launch id)
            await self._finish_launch(job, lease)
            return
        try:
            if status == S.CANCELLING:
                await self.launcher.stop(job.launch_id or "")
            state = await self.launcher.status(job.launch_id or "")
        except LaunchError as exc:
            log.warning("job %s: %s", job.id, exc)  # Ray unreachable: nothing is decided, try again later
            async with self.sessions() as session, session.begin():
                await release(session, job.id, lease)
            return
        await self._apply(job, lease, state)

    async def _apply(self, job: JobModel, lease: str, state: LaunchStatus) -> None:
        status = S(job.status)
        now = utcnow()
        if status == S.CANCELLING:
            timed_out = job.stop_reason == "timeout"
            if state.state in (LaunchState.STOPPED, LaunchState.FAILED, LaunchState.NOT_FOUND):
                if timed_out:
                    await self._end(
                        job, lease, S.TIMED_OUT, f"exceeded its timeout of {format_duration(job.timeout_s)}"
                    )
                else:
                    await self._end(job, lease, S.CANCELLED, f"{job.status_reason}: the Ray job was stopped")
            elif state.state == LaunchState.SUCCEEDED:
                await self._end(job, lease, S.SUCCEEDED, "finished before it could be stopped")
            else:
                await self._release(job, lease)
            return
        if state.state in (LaunchState.PENDING, LaunchState.RUNNING):
            if job.started_at and now - job.started_at > timedelta(seconds=job.timeout_s):
                await self._time_out(job, lease)
                return
            if state.state == LaunchState.RUNNING and status == S.STARTING:
                async with self.sessions() as session, session.begin():
                    await change_status(session, job, S.RUNNING, "running on Ray", held_lease=lease)
                    await release(session, job.id, lease)
            else:
                await self._release(job, lease)
            return
        if state.state == LaunchState.SUCCEEDED:
            await self._succeed(job, lease)
        elif state.state == LaunchState.FAILED:
            logs = await self._archive_logs(job)
            async with self.sessions() as session, session.begin():
                ended = await fail_or_retry(
                    session,
                    job,
                    failure_reason(state.message, logs),
                    infrastructure=state.infrastructure_failure,
                    held_lease=lease,
                )
            if ended is not None:
                await self._release_launch(job)
        elif state.state == LaunchState.STOPPED:
            await self._end(job, lease, S.FAILED, "the Ray job was stopped outside dljobs")
        elif state.state == LaunchState.NOT_FOUND:
            async with self.sessions() as session, session.begin():
                await fail_or_retry(
                    session,
                    job,
                    "the Ray job was lost (did the Ray head restart?)",
                    infrastructure=True,
                    held_lease=lease,
                )

    async def _finish_launch(self, job: JobModel, lease: str) -> None:
        """Confirm a launch whose outcome is unknown, or make it again under the same launch id. After
        `launch_grace` without an answer from Ray the attempt counts as an infrastructure failure."""
        submitted = False
        try:
            state = await self.launcher.status(job.launch_id or "")
            if state.state == LaunchState.NOT_FOUND:
                report_token = new_token(JOB_TOKEN_PREFIX)
                async with self.sessions() as session, session.begin():
                    await guarded_update(session, job.id, lease, report_token_hash=hash_token(report_token))
                async with self.sessions() as session:
                    init_from = await resolve_init_from(session, job)
                request = await build_request(job, self.settings, self.store, report_token, init_from)
                await self.launcher.submit(request)
                submitted = True
        except (LaunchError, StorageError) as exc:
            refused = isinstance(exc, LaunchError) and not exc.infrastructure
            waited = (utcnow() - (job.started_at or utcnow())).total_seconds()
            if refused or waited > self.settings.reconciler.launch_grace:
                if not refused:
                    with contextlib.suppress(LaunchError):
                        await self.launcher.stop(job.launch_id or "")  # in case Ray took it after all
                async with self.sessions() as session, session.begin():
                    await fail_or_retry(
                        session, job, f"launch failed: {exc}", infrastructure=not refused, held_lease=lease
                    )
                return
            log.warning("job %s: launch not confirmed yet: %s", job.id, exc)
            await self._release(job, lease)
            return
        async with self.sessions() as session, session.begin():
            await confirm_launch(session, job.id, lease)
        if submitted and self.metrics is not None:
            self.metrics.launches.inc()

    async def _time_out(self, job: JobModel, lease: str) -> None:
        """Past its timeout: CANCELLING (stop on Ray), and TIMED_OUT once Ray confirms the stop."""
        async with self.sessions() as session, session.begin():
            reason = f"exceeded its timeout of {format_duration(job.timeout_s)}; stopping"
            if await change_status(
                session, job, S.CANCELLING, reason, held_lease=lease, stop_reason="timeout"
            ):
                await release(session, job.id, lease)
        self.wake()

    async def _end(self, job: JobModel, lease: str, status: JobStatus, reason: str) -> None:
        await self._archive_logs(job)
        async with self.sessions() as session, session.begin():
            ended = await change_status(session, job, status, reason, held_lease=lease)
        if ended:
            await self._release_launch(job)

    async def _release_launch(self, job: JobModel) -> None:
        try:
            await self.launcher.release(job.launch_id or "")
        except LaunchError as exc:
            log.warning("job %s: releasing its launch failed: %s", job.id, exc)

    async def _succeed(self, job: JobModel, lease: str) -> None:
        """Training jobs succeed only with their artifacts in the store, as their manifest lists them."""
        if job.spec["workload"].get("command"):
            await self._end(job, lease, S.SUCCEEDED, "succeeded")
            return
        records, problem = await read_manifest(self.store, job.id)
        if records is None:
            await self._archive_logs(job)
            async with self.sessions() as session, session.begin():
                await change_status(
                    session, job, S.FAILED, f"finished without its artifacts: {problem}", held_lease=lease
                )
            return
        await self._archive_logs(job)
        card = await registry.read_card(self.store, job.id)
        async with self.sessions() as session, session.begin():
            await register_artifacts(session, self.store, job.id, records)
            ended = await change_status(
                session, job, S.SUCCEEDED, f"succeeded with {len(records)} artifacts", held_lease=lease
            )
            if ended and card is not None:
                # the model joins the registry (and its endpoint, for a deploy: section) in the
                # transaction that records the success
                version = await registry.register_version(session, self.store, job, card)
                if job.spec.get("deploy"):
                    await endpoints.deploy_from_job(session, job, version)
        if ended:
            await self._release_launch(job)

    async def _release(self, job: JobModel, lease: str) -> None:
        async with self.sessions() as session, session.begin():
            await release(session, job.id, lease)

    async def _archive_logs(self, job: JobModel) -> str:
        """Copy the attempt's logs from Ray to the artifact store; returns them ('' if unavailable)."""
        if not job.launch_id:
            return ""
        try:
            logs = await self.launcher.logs(job.launch_id)
        except LaunchError as exc:
            log.warning("job %s: reading logs failed: %s", job.id, exc)
            return ""
        data = logs.encode()
        key = log_key(job.id, job.attempt)
        try:
            await asyncio.to_thread(self.store.put_bytes, key, data)
        except (StorageError, OSError) as exc:
            log.warning("job %s: archiving logs failed: %s", job.id, exc)
            return logs
        record = api.ArtifactRecord(
            name=key.removeprefix(f"{job_prefix(job.id)}/"),
            uri=self.store.url_for(key),
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            kind="logs",
        )
        async with self.sessions() as session, session.begin():
            await register_artifacts(session, self.store, job.id, [record])
        return logs
