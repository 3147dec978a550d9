"""A job's output: live from Ray while an attempt runs, from the artifact store once it has ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from dljobs.controller.db.models import JobModel
from dljobs.controller.launchers.base import LaunchError
from dljobs.controller.runtime import Runtime
from dljobs.controller.services.launching import log_key
from dljobs.spec.runtime import attempt_launch_id
from dljobs.spec.status import ACTIVE, TERMINAL, WAITING, JobStatus
from dljobs.storage import StorageError

POLL_SECONDS = 1.0


async def read_logs(runtime: Runtime, job: JobModel, attempt: int) -> str:
    if attempt < 1:
        return ""
    live = attempt == job.attempt and JobStatus(job.status) in ACTIVE
    if not live:
        try:
            data = await asyncio.to_thread(runtime.store.get_bytes, log_key(job.id, attempt))
            return data.decode("utf-8", "replace")
        except (StorageError, OSError):
            pass  # not archived (yet): Ray may still have it
    try:
        return await runtime.launcher.logs(attempt_launch_id(job.launch_id or "", attempt))
    except LaunchError:
        return ""


async def _load(runtime: Runtime, job_id: int) -> JobModel | None:
    async with runtime.sessions() as session:
        return await session.get(JobModel, job_id)


async def follow_logs(runtime: Runtime, job_id: int, first_attempt: int | None) -> AsyncIterator[str]:
    """Stream the job's output from `first_attempt` (default: the current one) until the job ends,
    across retries, surviving a dropped connection to Ray without repeating what was sent."""
    attempt = first_attempt
    while True:
        job = await _load(runtime, job_id)
        if job is None:
            return
        status = JobStatus(job.status)
        if attempt is None:
            attempt = max(job.attempt, 1)
        if job.attempt < attempt or (job.attempt == attempt and status in ACTIVE and job.launched_at is None):
            if status in TERMINAL:
                return
            await asyncio.sleep(POLL_SECONDS)  # not launched yet
            continue
        if attempt < job.attempt or status not in ACTIVE:
            yield await read_logs(runtime, job, attempt)
            if status in TERMINAL and attempt >= job.attempt:
                return
        else:
            async for chunk in _tail(runtime, job, attempt):
                yield chunk
            if not await _attempt_retried(runtime, job_id, attempt):
                return
        attempt += 1
        yield f"\n--- attempt {attempt} ---\n"


async def _attempt_retried(runtime: Runtime, job_id: int, attempt: int) -> bool:
    """Once an attempt's output has ended: wait until the controller records how it ended.
    True if the job goes on with another attempt, False if it is over."""
    while True:
        job = await _load(runtime, job_id)
        if job is None:
            return False
        status = JobStatus(job.status)
        if job.attempt > attempt or status in WAITING:
            return True
        if status in TERMINAL:
            return False
        await asyncio.sleep(POLL_SECONDS / 2)


async def _tail(runtime: Runtime, job: JobModel, attempt: int) -> AsyncIterator[str]:
    """The live attempt's output until Ray ends it; after a dropped stream, resume past what was sent."""
    sent = 0
    while True:
        received = 0
        try:
            async for chunk in runtime.launcher.tail_logs(attempt_launch_id(job.launch_id or "", attempt)):
                start = max(0, sent - received)
                received += len(chunk)
                if start < len(chunk):
                    yield chunk[start:]
                    sent = received
            return
        except LaunchError:
            await asyncio.sleep(POLL_SECONDS * 2)
            current = await _load(runtime, job.id)
            if current is None or JobStatus(current.status) not in ACTIVE or current.attempt != attempt:
                return
