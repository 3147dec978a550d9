"""The Ray Job Submission API (the head's REST endpoints), with token auth, over async HTTP.

The controller never imports `ray`: submitting, polling, stopping, reading logs and the cluster's size are
all REST calls, so the controller stays light and never blocks its event loop on Ray.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from dljobs.controller.launchers.base import (
    RAY_INFRASTRUCTURE_ERRORS,
    Capacity,
    LaunchError,
    LaunchRequest,
    LaunchState,
    LaunchStatus,
    RayRestClient,
)

# The runner exits with EX_TEMPFAIL when what failed was the platform (storage unreachable, say).
INFRASTRUCTURE_EXIT_CODE = 75


class RayJobsLauncher(RayRestClient):
    async def submit(self, request: LaunchRequest) -> None:
        runtime_env: dict[str, Any] = {"env_vars": request.env}
        if request.code_bundle is not None:
            runtime_env["working_dir"] = await self._upload_bundle(request.code_bundle, request.code_sha256)
        body = {
            "entrypoint": request.entrypoint,
            "submission_id": request.launch_id,
            "runtime_env": runtime_env,
            "metadata": {
                "dljobs_job_id": str(request.job_id),
                "dljobs_attempt": str(request.attempt),
                **request.metadata,
            },
            "entrypoint_num_cpus": request.entrypoint_cpus,
        }
        response = await self._request("POST", "/api/jobs/", json=body)
        if response.status_code == 200:
            return
        if "already exists" in response.text:
            return  # launched before (by us, before a crash): the same launch id never runs twice
        if response.status_code == 400:
            raise LaunchError(f"Ray refused the job: {_last_line(response.text)}", infrastructure=False)
        raise LaunchError(
            f"Ray could not start the job ({response.status_code}): {_last_line(response.text)}"
        )

    async def _upload_bundle(self, bundle: bytes, sha256: str | None) -> str:
        import hashlib

        digest = sha256 or hashlib.sha256(bundle).hexdigest()
        name = f"_ray_pkg_{digest[:32]}.zip"
        uri = f"gcs://{name}"
        exists = await self._request("GET", f"/api/packages/gcs/{name}")
        if exists.status_code == 200:
            return uri
        uploaded = await self._request("PUT", f"/api/packages/gcs/{name}", content=bundle)
        if uploaded.status_code != 200:
            raise LaunchError(f"uploading the code bundle to Ray failed: {_last_line(uploaded.text)}")
        return uri

    async def status(self, launch_id: str) -> LaunchStatus:
        response = await self._request("GET", f"/api/jobs/{launch_id}")
        if response.status_code == 404:
            return LaunchStatus(LaunchState.NOT_FOUND, "Ray has no record of this job")
        if response.status_code != 200:
            raise LaunchError(f"Ray answered {response.status_code} for job {launch_id}")
        info = response.json()
        state = {
            "PENDING": LaunchState.PENDING,
            "RUNNING": LaunchState.RUNNING,
            "SUCCEEDED": LaunchState.SUCCEEDED,
            "FAILED": LaunchState.FAILED,
            "STOPPED": LaunchState.STOPPED,
        }.get(info.get("status", ""), LaunchState.PENDING)
        message = (info.get("message") or "").strip()
        infrastructure = state == LaunchState.FAILED and (
            info.get("error_type") in RAY_INFRASTRUCTURE_ERRORS
            or info.get("driver_exit_code") == INFRASTRUCTURE_EXIT_CODE
        )
        return LaunchStatus(state, message, infrastructure_failure=infrastructure)

    async def stop(self, launch_id: str) -> None:
        response = await self._request("POST", f"/api/jobs/{launch_id}/stop")
        if response.status_code not in (200, 404):
            raise LaunchError(f"Ray could not stop job {launch_id} ({response.status_code})")

    async def release(self, launch_id: str) -> None:
        """Nothing to free: a shared cluster keeps a finished Ray job's record, which costs nothing."""

    async def logs(self, launch_id: str) -> str:
        response = await self._request("GET", f"/api/jobs/{launch_id}/logs")
        if response.status_code == 404:
            return ""
        if response.status_code != 200:
            raise LaunchError(f"Ray could not read the logs of {launch_id} ({response.status_code})")
        return str(response.json().get("logs", ""))

    async def tail_logs(self, launch_id: str) -> AsyncIterator[str]:
        """Log text as the job writes it, until the job ends (Ray's websocket tail)."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        url = self.address.replace("http", "ws", 1) + f"/api/jobs/{launch_id}/logs/tail"
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            # no permessage-deflate: Ray's proxied tail closes compressed sockets without a message
            async with connect(
                url, additional_headers=headers, open_timeout=15, max_size=None, compression=None
            ) as socket:
                async for message in socket:
                    yield message if isinstance(message, str) else message.decode("utf-8", "replace")
        except (ConnectionClosed, InvalidStatus, OSError) as exc:
            if isinstance(exc, InvalidStatus) and exc.response.status_code == 404:
                return
            if isinstance(exc, ConnectionClosed):
                return
            raise LaunchError(f"lost the log stream of {launch_id}: {exc}") from None

    async def capacity(self) -> Capacity:
        try:
            response = await self._request("GET", "/api/v0/nodes", params={"detail": "1", "limit": "10000"})
        except LaunchError as exc:
            return Capacity(ready=False, message=str(exc))
        if response.status_code != 200:
            return Capacity(ready=False, message=f"Ray answered {response.status_code} for its node list")
        nodes = response.json().get("data", {}).get("result", {}).get("result", [])
        if not any(node.get("state") == "ALIVE" for node in nodes):
            return Capacity(ready=False, message="the Ray cluster has no live node yet")
        cpus = gpus = 0.0
        accelerators: dict[str, float] = {}
        for node in nodes:
            if node.get("state") != "ALIVE":
                continue
            resources = node.get("resources_total", {})
            cpus += float(resources.get("CPU", 0.0))
            node_gpus = float(resources.get("GPU", 0.0))
            gpus += node_gpus
            for key in resources:
                if key.startswith("accelerator_type:"):
                    kind = key.split(":", 1)[1]
                    accelerators[kind] = accelerators.get(kind, 0.0) + node_gpus
        return Capacity(ready=True, cpus=cpus, gpus=gpus, accelerators=accelerators)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    try:
        return str(json.loads(text).get("message", lines[-1]))[:500]
    except (ValueError, AttributeError):
        return lines[-1][:500]
