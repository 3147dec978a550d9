"""What the controller needs from whatever runs jobs: submit, status, stop, logs, capacity.

Implementations: `ray_jobs.RayJobsLauncher` (the Ray Job Submission API of a shared cluster) and
`kuberay.RayJobLauncher` (one KubeRay RayJob object, hence one Ray cluster, per job).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import httpx

# Ray job error types that mean the platform failed, not the user's code (retried within the job's budget).
RAY_INFRASTRUCTURE_ERRORS = frozenset(
    {
        "RUNTIME_ENV_SETUP_FAILURE",
        "JOB_SUPERVISOR_ACTOR_START_TIMEOUT",
        "JOB_SUPERVISOR_ACTOR_START_FAILURE",
        "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE",
        "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE",
        "JOB_SUPERVISOR_ACTOR_DIED",
        "JOB_ENTRYPOINT_COMMAND_START_ERROR",
    }
)


class LaunchState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True)
class LaunchStatus:
    state: LaunchState
    message: str = ""
    # True when the failure came from the platform (lost node, supervisor died, runtime env setup), not
    # from the user's code: such failures are retried within the job's budget.
    infrastructure_failure: bool = False


@dataclass(frozen=True)
class LaunchRequest:
    launch_id: str
    job_id: int
    attempt: int
    entrypoint: str
    env: dict[str, str]
    code_bundle: bytes | None = None  # a zip, shipped as the job's working directory
    code_sha256: str | None = None
    entrypoint_cpus: float = 0.0
    metadata: dict[str, str] = field(default_factory=dict)
    # what the job's workers need: the KubeRay launcher sizes its cluster from these
    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    accelerator: str | None = None


@dataclass(frozen=True)
class Capacity:
    """What the cluster can hold, read from Ray. `ready` is False while it cannot be reached."""

    ready: bool
    cpus: float = 0.0
    gpus: float = 0.0
    accelerators: dict[str, float] = field(default_factory=dict)  # GPU type -> count
    message: str = ""


class LaunchError(Exception):
    """A launch that did not happen. `infrastructure` errors are retried; others fail the job."""

    def __init__(self, message: str, *, infrastructure: bool = True) -> None:
        super().__init__(message)
        self.infrastructure = infrastructure


class Launcher(Protocol):
    async def submit(self, request: LaunchRequest) -> None:
        """Start the launch. Idempotent: a launch id that already exists is not started twice."""

    async def status(self, launch_id: str) -> LaunchStatus: ...

    async def stop(self, launch_id: str) -> None:
        """Ask the launch to stop; returns once the request is accepted (not once it has stopped)."""

    async def release(self, launch_id: str) -> None:
        """Free what an ended launch still holds, once its end (and its logs) are recorded."""

    async def logs(self, launch_id: str) -> str: ...

    def tail_logs(self, launch_id: str) -> AsyncIterator[str]: ...

    async def capacity(self) -> Capacity: ...

    async def close(self) -> None: ...


class RayRestClient:
    """An async client of the Ray head's REST API (the dashboard port), sending the cluster's token."""

    service = "the Ray cluster"

    def __init__(self, address: str, token: str | None, timeout: float = 15.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.address = address.rstrip("/")
        self._token = token
        self._client = httpx.AsyncClient(base_url=self.address, headers=headers, timeout=timeout)

    async def close(self) -> None:
        await self._client.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LaunchError(
                f"{self.service} at {self.address} is unreachable: {exc.__class__.__name__}"
            ) from None
        if response.status_code in (401, 403):
            raise LaunchError(
                f"the Ray cluster refused our token ({response.status_code}): check the Ray token"
            )
        return response
