"""The RayJob launcher: one KubeRay RayJob, hence one Ray cluster of its own, per job attempt.

`build_rayjob` (kuberay_objects.py) turns a `LaunchRequest` into the RayJob object: a head for the driver and
one worker group sized from the request (workers x cpus/gpus, the accelerator's node pool), the entrypoint and
runtime env, the attempt's launch id as the Ray submission id, and cleanup by KubeRay once the job ends
(shutdownAfterJobFinishes with the configured TTL). What surrounds every job's pods (secrets, S3 settings,
service account, GPU node pools) comes from a `RayJobTemplate` (kuberay_template.py), which the Helm chart
renders from its own values into a JSON file.

The code bundle reaches the cluster in one of two ways:
- `request.metadata["code_uri"]` (an s3:// URI of the zip, uploaded by the controller): the runtime env's
  working_dir points at it and every Ray node downloads it (boto3 with the pods' S3 settings).
- otherwise, a bundle up to `CONFIGMAP_BUNDLE_LIMIT` bytes goes in a ConfigMap owned by the RayJob
  (deleted with it) and mounted into KubeRay's submitter pod, whose `ray job submit` uploads it to the
  cluster's GCS like any local working_dir. A larger bundle without a code_uri fails the launch.

`RayJobLauncher` implements the `Launcher` protocol on the Kubernetes API (the official client's blocking
calls run in a thread; `kubernetes` is imported on first use) and reads logs from the job's Ray dashboard
with the cluster's Ray token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from dljobs.controller.launchers.base import (
    RAY_INFRASTRUCTURE_ERRORS,
    Capacity,
    LaunchError,
    LaunchRequest,
    LaunchState,
    LaunchStatus,
)
from dljobs.controller.launchers.kuberay_objects import (
    RAY_GROUP,
    RAY_VERSION,
    RAYJOB_PLURAL,
    build_bundle_config_map,
    build_rayjob,
    bundle_in_config_map,
)
from dljobs.controller.launchers.kuberay_template import (
    RayJobTemplate,
)
from dljobs.controller.settings import Settings

# The same failures recognised from the message alone, when the dashboard is gone.
INFRASTRUCTURE_MESSAGES = ("runtime_env setup failed", "Job supervisor actor", "failed to get job supervisor")
# RayJob status.reason values when jobDeploymentStatus is Failed: True if the platform is to blame.
FAILED_REASONS = {
    "SubmissionFailed": True,
    "PreRunningDeadlineExceeded": True,
    "JobDeploymentStatusTransitionGracePeriodExceeded": True,
    "JobStatusCheckTimeoutExceeded": True,
    "DeadlineExceeded": False,
    "AppFailed": False,
    "ValidationFailed": False,
}
_PENDING_DEPLOYMENT = {"", "New", "Initializing", "Waiting", "Retrying"}


def launch_status(rayjob: dict[str, Any] | None, error_type: str | None = None) -> LaunchStatus:
    """Map a RayJob (None: not found) to a LaunchStatus. `error_type` is Ray's JobErrorType for a failed job,
    when the dashboard could still be asked."""
    if rayjob is None:
        return LaunchStatus(LaunchState.NOT_FOUND, "no such RayJob")
    status = rayjob.get("status") or {}
    job = status.get("jobStatus", "")
    deployment = status.get("jobDeploymentStatus", "")
    reason = status.get("reason", "")
    message = status.get("message", "")
    if rayjob.get("metadata", {}).get("deletionTimestamp"):
        return LaunchStatus(LaunchState.STOPPED, "the RayJob is being deleted")
    if deployment == "Failed" or deployment == "ValidationFailed":
        if job == "FAILED" or reason == "AppFailed":
            return _failed_job(message, error_type)
        infrastructure = FAILED_REASONS.get(reason, deployment == "Failed")
        return LaunchStatus(LaunchState.FAILED, _join(reason or deployment, message), infrastructure)
    if job == "SUCCEEDED":
        return LaunchStatus(LaunchState.SUCCEEDED, message)
    if job == "FAILED":
        return _failed_job(message, error_type)
    if job == "STOPPED" or deployment in {"Suspending", "Suspended"}:
        return LaunchStatus(LaunchState.STOPPED, _join(deployment, message))
    if job == "RUNNING":
        return LaunchStatus(LaunchState.RUNNING, message)
    if deployment in _PENDING_DEPLOYMENT or deployment in {"Running", "Complete"}:
        return LaunchStatus(LaunchState.PENDING, _join(deployment or "New", message))
    return LaunchStatus(LaunchState.PENDING, _join(f"unrecognised RayJob state {deployment}/{job}", message))


def _failed_job(message: str, error_type: str | None) -> LaunchStatus:
    if error_type:
        infrastructure = error_type in RAY_INFRASTRUCTURE_ERRORS
    else:
        infrastructure = any(marker in message for marker in INFRASTRUCTURE_MESSAGES)
    return LaunchStatus(LaunchState.FAILED, message, infrastructure)


def _join(*parts: str) -> str:
    return ": ".join(p for p in parts if p)


def dashboard_url(rayjob: dict[str, Any]) -> str | None:
    url = (rayjob.get("status") or {}).get("dashboardURL")
    if not url:
        return None
    return url if url.startswith(("http://", "https://")) else f"http://{url}"


class RayJobLauncher:
    """The `Launcher` protocol on KubeRay RayJobs in `settings.launcher.namespace`.

    The template is `template`, else the file `settings.launcher.rayjob_template_file`, else the defaults.
    `api_client` is a `kubernetes.client.ApiClient`; by default one is built from the pod's service account
    (or, outside a cluster, from the kubeconfig). The Ray token (`settings.ray`) authenticates log reads on
    the jobs' dashboards.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        template: RayJobTemplate | None = None,
        api_client: Any | None = None,
        log_poll_interval: float = 2.0,
    ) -> None:
        self.settings = settings.launcher
        if template is None:
            path = settings.launcher.rayjob_template_file
            template = RayJobTemplate.load(path) if path else RayJobTemplate()
        self.template = template
        self._api_client = api_client
        token = settings.ray.resolved_token()
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(timeout=settings.ray.request_timeout)
        self._log_poll_interval = log_poll_interval

    # -- Kubernetes calls (blocking client, run in a thread) ------------------------------------------------

    def _client(self) -> Any:
        if self._api_client is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            self._api_client = client.ApiClient()
        return self._api_client

    def _custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self._client())

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call in a thread; Kubernetes errors become LaunchError, except the statuses the
        caller handles (returned as the ApiException)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ApiException as exc:
            if exc.status in (404, 409):
                return _ApiStatus(exc.status)
            # An object Kubernetes refuses would be refused again: not worth a retry.
            invalid = exc.status in (400, 422)
            raise LaunchError(
                f"Kubernetes refused to {what}: {exc.status} {_api_message(exc)}", infrastructure=not invalid
            ) from exc
        except (OSError, HTTPError) as exc:
            raise LaunchError(f"cannot reach the Kubernetes API to {what}: {exc}") from exc

    async def _get(self, launch_id: str) -> dict[str, Any] | None:
        found = await self._call(
            "read a RayJob",
            self._custom().get_namespaced_custom_object,
            RAY_GROUP,
            RAY_VERSION,
            self.settings.namespace,
            RAYJOB_PLURAL,
            launch_id,
        )
        return None if _is_api_error(found) else found

    # -- Launcher protocol -------------------------------------------------------------------------------

    async def submit(self, request: LaunchRequest) -> None:
        body = build_rayjob(request, self.settings, self.template)
        created = await self._call(
            "create a RayJob",
            self._custom().create_namespaced_custom_object,
            RAY_GROUP,
            RAY_VERSION,
            self.settings.namespace,
            RAYJOB_PLURAL,
            body,
        )
        if _is_api_error(created):  # 409: this attempt was launched already
            created = await self._get(request.launch_id)
            if created is None:
                raise LaunchError(f"RayJob {request.launch_id} exists and vanished while being read")
        if bundle_in_config_map(request):
            from kubernetes import client

            config_map = build_bundle_config_map(request, self.settings, created)
            await self._call(
                "create the code bundle ConfigMap",
                client.CoreV1Api(self._client()).create_namespaced_config_map,
                self.settings.namespace,
                config_map,
            )

    async def status(self, launch_id: str) -> LaunchStatus:
        rayjob = await self._get(launch_id)
        if rayjob is not None and (rayjob.get("status") or {}).get("jobStatus") == "FAILED":
            return launch_status(rayjob, await self._error_type(rayjob))
        return launch_status(rayjob)

    async def stop(self, launch_id: str) -> None:
        # Foreground: the RayJob stays (reported STOPPED) until its cluster, submitter and bundle are gone.
        await self._call(
            "delete a RayJob",
            self._custom().delete_namespaced_custom_object,
            RAY_GROUP,
            RAY_VERSION,
            self.settings.namespace,
            RAYJOB_PLURAL,
            launch_id,
            propagation_policy="Foreground",
        )

    async def release(self, launch_id: str) -> None:
        """The controller has recorded the end: delete the RayJob (KubeRay only removes its Ray cluster)."""
        await self.stop(launch_id)

    async def logs(self, launch_id: str) -> str:
        rayjob = await self._get(launch_id)
        if rayjob is None:
            raise LaunchError(f"no RayJob {launch_id}", infrastructure=False)
        url = dashboard_url(rayjob)
        if url is None:
            return ""  # no Ray cluster yet: nothing has been logged
        job_id = (rayjob.get("status") or {}).get("jobId") or launch_id
        try:
            response = await self._http.get(f"{url}/api/jobs/{job_id}/logs", headers=self._headers)
        except httpx.HTTPError as exc:
            raise LaunchError(
                f"the Ray dashboard of {launch_id} cannot be reached (its cluster may have been "
                f"deleted after the job): {exc}"
            ) from exc
        if response.status_code == 404:
            return ""  # submitted but not started yet
        if response.status_code != 200:
            raise LaunchError(
                f"the Ray dashboard of {launch_id} answered {response.status_code}: {response.text[:200]}"
            )
        return str(response.json().get("logs", ""))

    async def tail_logs(self, launch_id: str) -> AsyncIterator[str]:
        """New log text as it appears, polled from the dashboard until the launch ends."""
        seen = 0
        while True:
            state = (await self.status(launch_id)).state
            text = await self.logs(launch_id)
            if len(text) > seen:
                yield text[seen:]
                seen = len(text)
            if state not in (LaunchState.PENDING, LaunchState.RUNNING):
                return
            await asyncio.sleep(self._log_poll_interval)

    async def capacity(self) -> Capacity:
        """The configured maxima of the node pools, once the Kubernetes API answers."""
        try:
            await self._call(
                "list RayJobs",
                self._custom().list_namespaced_custom_object,
                RAY_GROUP,
                RAY_VERSION,
                self.settings.namespace,
                RAYJOB_PLURAL,
                limit=1,
            )
        except LaunchError as exc:
            return Capacity(ready=False, message=str(exc))
        limits = self.template.capacity
        return Capacity(
            ready=True, cpus=limits.cpus, gpus=limits.gpus, accelerators=dict(limits.accelerators)
        )

    async def close(self) -> None:
        await self._http.aclose()
        if self._api_client is not None:
            await asyncio.to_thread(self._api_client.close)

    async def _error_type(self, rayjob: dict[str, Any]) -> str | None:
        """Ray's JobErrorType of a failed job, while its dashboard is still up; None otherwise."""
        url = dashboard_url(rayjob)
        job_id = (rayjob.get("status") or {}).get("jobId")
        if not url or not job_id:
            return None
        try:
            response = await self._http.get(f"{url}/api/jobs/{job_id}", headers=self._headers)
            return response.json().get("error_type") if response.status_code == 200 else None
        except (httpx.HTTPError, json.JSONDecodeError):
            return None


class _ApiStatus(int):
    """A 404 or 409 answer, returned by `_call` for the caller to handle instead of raised."""


def _is_api_error(value: Any) -> bool:
    return isinstance(value, _ApiStatus)


def _api_message(exc: Any) -> str:
    try:
        return str(json.loads(exc.body).get("message", exc.reason))
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)
