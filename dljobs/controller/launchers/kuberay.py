"""The RayJob launcher: one KubeRay RayJob, hence one Ray cluster of its own, per job attempt.

`build_rayjob` turns a `LaunchRequest` into the RayJob object: a head for the driver and one worker group
sized from the request (workers x cpus/gpus, the accelerator's node pool), the entrypoint and runtime env, the
attempt's launch id as the Ray submission id, and cleanup by KubeRay once the job ends
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
import base64
import json
import math
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import yaml

from dljobs.controller.launchers.base import Capacity, LaunchError, LaunchRequest, LaunchState, LaunchStatus
from dljobs.controller.launchers.kuberay_template import (
    AcceleratorPool,
    RayJobTemplate,
    cpu_quantity,
    mebibytes,
    quantity_bytes,
    restricted_container_security,
    restricted_pod_security,
)
from dljobs.controller.settings import LauncherSettings, Settings

RAY_GROUP = "ray.io"
RAY_VERSION = "v1"
RAYJOB_PLURAL = "rayjobs"
CONFIGMAP_BUNDLE_LIMIT = 768 * 1024  # ConfigMaps hold at most 1 MiB; leave room for the base64 and the object
BUNDLE_MOUNT_DIR = "/var/run/dljobs/code"
BUNDLE_FILE = "bundle.zip"
LABEL_COMPONENT = "dljobs.io/component"
LABEL_JOB_ID = "dljobs.io/job-id"
LABEL_ATTEMPT = "dljobs.io/attempt"
LABEL_LAUNCH_ID = "dljobs.io/launch-id"
ACCELERATOR_LABEL = "ray.io/accelerator-type"
RAY_UID = 1000  # the Ray image's user

# Ray's JobErrorType values that mean the platform failed, not the user's code (ray.dashboard.modules.job).
INFRASTRUCTURE_ERROR_TYPES = {
    "RUNTIME_ENV_SETUP_FAILURE",
    "JOB_SUPERVISOR_ACTOR_START_TIMEOUT",
    "JOB_SUPERVISOR_ACTOR_START_FAILURE",
    "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE",
    "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE",
    "JOB_SUPERVISOR_ACTOR_DIED",
}
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


def bundle_config_map_name(launch_id: str) -> str:
    return f"{launch_id}-code"


def bundle_in_config_map(request: LaunchRequest) -> bool:
    return request.code_bundle is not None and not request.metadata.get("code_uri")


def _working_dir(request: LaunchRequest) -> str | None:
    code_uri = request.metadata.get("code_uri")
    if code_uri:
        return code_uri
    if request.code_bundle is None:
        return None
    if len(request.code_bundle) > CONFIGMAP_BUNDLE_LIMIT:
        raise LaunchError(
            f"the code bundle is {len(request.code_bundle)} bytes, over the {CONFIGMAP_BUNDLE_LIMIT} bytes a "
            "ConfigMap can carry; the RayJob launcher needs it in S3 (metadata code_uri)",
            infrastructure=False,
        )
    return f"{BUNDLE_MOUNT_DIR}/{BUNDLE_FILE}"


def _job_labels(request: LaunchRequest, template: RayJobTemplate) -> dict[str, str]:
    return {
        **template.labels,
        LABEL_COMPONENT: "rayjob",
        LABEL_JOB_ID: str(request.job_id),
        LABEL_ATTEMPT: str(request.attempt),
        LABEL_LAUNCH_ID: request.launch_id,
    }


def _auth_env(template: RayJobTemplate) -> list[dict[str, Any]]:
    if not template.auth_secret:
        return []
    return [
        {"name": "RAY_AUTH_MODE", "value": "token"},
        {
            "name": "RAY_AUTH_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": template.auth_secret, "key": "auth_token"}},
        },
    ]


def _pod_spec(
    template: RayJobTemplate, image: str, container: dict[str, Any], volumes: list[dict[str, Any]]
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": restricted_pod_security(RAY_UID),
        "containers": [
            {
                "image": image,
                "imagePullPolicy": template.image_pull_policy,
                "securityContext": restricted_container_security(),
                **container,
            }
        ],
        "volumes": volumes,
    }
    if template.service_account:
        spec["serviceAccountName"] = template.service_account
    if template.image_pull_secrets:
        spec["imagePullSecrets"] = template.image_pull_secrets
    if template.priority_class_name:
        spec["priorityClassName"] = template.priority_class_name
    return spec


def _ray_volumes(template: RayJobTemplate, shared_memory: str) -> list[dict[str, Any]]:
    return [
        {"name": "tmp", "emptyDir": {"sizeLimit": template.tmp_size}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shared_memory}},
    ]


_RAY_MOUNTS = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "dshm", "mountPath": "/dev/shm"}]


def _resources(cpus: float, memory: str, gpus: int = 0) -> dict[str, Any]:
    amounts: dict[str, str] = {"cpu": cpu_quantity(cpus), "memory": memory}
    if gpus:
        amounts["nvidia.com/gpu"] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _accelerator_pool(template: RayJobTemplate, accelerator: str) -> AcceleratorPool:
    pool = template.accelerators.get(accelerator)
    if pool is None:
        by_lower = {name.lower(): p for name, p in template.accelerators.items()}
        pool = by_lower.get(accelerator.lower())
    if pool is None:
        known = ", ".join(sorted(template.accelerators)) or "none"
        raise LaunchError(
            f"resources.accelerator: no GPU node pool serves '{accelerator}' (configured: {known})",
            infrastructure=False,
        )
    return pool


def _worker_group(
    request: LaunchRequest,
    template: RayJobTemplate,
    image: str,
    labels: dict[str, str],
    env: list[dict[str, Any]],
) -> dict[str, Any]:
    gpus = math.ceil(request.gpus_per_worker) if request.gpus_per_worker > 0 else 0
    if request.metadata.get("memory_per_worker"):
        memory_bytes = int(request.metadata["memory_per_worker"])
    else:
        memory_bytes = math.ceil(request.cpus_per_worker * quantity_bytes(template.memory_per_cpu))
    container = {
        "name": "ray-worker",
        "env": env,
        "resources": _resources(request.cpus_per_worker, mebibytes(memory_bytes), gpus),
        "volumeMounts": _RAY_MOUNTS,
    }
    shared_memory = mebibytes(min(quantity_bytes(template.shared_memory), memory_bytes // 2))
    pod = _pod_spec(template, image, container, _ray_volumes(template, shared_memory))
    group: dict[str, Any] = {
        "groupName": "workers",
        "replicas": request.workers,
        "minReplicas": request.workers,
        "maxReplicas": request.workers,
        "rayStartParams": {},
    }
    if gpus:
        tolerations = list(template.gpu_tolerations)
        if request.accelerator:
            pool = _accelerator_pool(template, request.accelerator)
            tolerations += [t for t in pool.tolerations if t not in tolerations]
            if pool.node_selector:
                pod["nodeSelector"] = dict(pool.node_selector)
            # What Ray Train's accelerator_type matches on, and the node label Ray would detect itself.
            group["resources"] = {f"accelerator_type:{request.accelerator}": "1"}
            group["labels"] = {ACCELERATOR_LABEL: request.accelerator}
            group["groupName"] = "gpu-" + re.sub(r"[^a-z0-9-]", "-", request.accelerator.lower())[:40]
        else:
            group["groupName"] = "gpu"
        if tolerations:
            pod["tolerations"] = tolerations
    group["template"] = {"metadata": {"labels": dict(labels)}, "spec": pod}
    return group


def _head_group(
    request: LaunchRequest,
    template: RayJobTemplate,
    image: str,
    labels: dict[str, str],
    env: list[dict[str, Any]],
) -> dict[str, Any]:
    # The head runs only the driver: Ray may schedule on it just the entrypoint's CPUs.
    driver_cpus = math.ceil(request.entrypoint_cpus) if request.entrypoint_cpus > 0 else 0
    cpus = max(template.head.cpus, float(driver_cpus))
    container = {
        "name": "ray-head",
        "env": env,
        "ports": [
            {"name": "gcs-server", "containerPort": 6379, "protocol": "TCP"},
            {"name": "dashboard", "containerPort": 8265, "protocol": "TCP"},
            {"name": "client", "containerPort": 10001, "protocol": "TCP"},
        ],
        "resources": _resources(cpus, template.head.memory),
        "volumeMounts": _RAY_MOUNTS,
    }
    shared_memory = mebibytes(quantity_bytes(template.head.memory) // 4)
    return {
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": str(driver_cpus)},
        "template": {
            "metadata": {"labels": dict(labels)},
            "spec": _pod_spec(template, image, container, _ray_volumes(template, shared_memory)),
        },
    }


def _submitter_template(
    request: LaunchRequest, template: RayJobTemplate, image: str, labels: dict[str, str]
) -> dict[str, Any]:
    """KubeRay's submitter pod runs `ray job submit` (KubeRay fills in the command and the auth env)."""
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    if bundle_in_config_map(request):
        mounts.append({"name": "code", "mountPath": BUNDLE_MOUNT_DIR, "readOnly": True})
        volumes.append({"name": "code", "configMap": {"name": bundle_config_map_name(request.launch_id)}})
    container = {
        "name": "ray-job-submitter",
        "env": [*_auth_env(template), {"name": "HOME", "value": "/tmp"}],
        "resources": {
            "requests": {"cpu": "200m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "volumeMounts": mounts,
    }
    spec = _pod_spec(template, image, container, volumes)
    spec["restartPolicy"] = "Never"
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


def build_rayjob(
    request: LaunchRequest, settings: LauncherSettings, template: RayJobTemplate
) -> dict[str, Any]:
    """The RayJob for one attempt. Raises LaunchError (not retried) when the request cannot be placed."""
    labels = _job_labels(request, template)
    image = settings.ray_image
    env = [*_auth_env(template), *template.env]
    runtime_env: dict[str, Any] = {"env_vars": dict(request.env)}
    working_dir = _working_dir(request)
    if working_dir:
        runtime_env["working_dir"] = working_dir
    cluster: dict[str, Any] = {
        "rayVersion": template.ray_version,
        "enableInTreeAutoscaling": False,
        "headGroupSpec": _head_group(request, template, image, labels, env),
        "workerGroupSpecs": [_worker_group(request, template, image, labels, env)],
    }
    if template.auth_secret:
        cluster["authOptions"] = {"mode": "token", "secretName": template.auth_secret}
    spec: dict[str, Any] = {
        "entrypoint": request.entrypoint,
        "runtimeEnvYAML": yaml.safe_dump(runtime_env, sort_keys=True),
        "jobId": request.launch_id,
        "metadata": {"dljobs_job_id": str(request.job_id), "dljobs_attempt": str(request.attempt)},
        "submissionMode": "K8sJobMode",
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": settings.rayjob_ttl_seconds,
        # The controller decides about retries (within the job's budget), not KubeRay.
        "backoffLimit": 0,
        "submitterConfig": {"backoffLimit": 2},
        "submitterPodTemplate": _submitter_template(request, template, image, labels),
        "rayClusterSpec": cluster,
    }
    if request.entrypoint_cpus > 0:
        spec["entrypointNumCpus"] = request.entrypoint_cpus
    return {
        "apiVersion": f"{RAY_GROUP}/{RAY_VERSION}",
        "kind": "RayJob",
        "metadata": {"name": request.launch_id, "namespace": settings.namespace, "labels": labels},
        "spec": spec,
    }


def build_bundle_config_map(
    request: LaunchRequest, settings: LauncherSettings, owner: dict[str, Any]
) -> dict[str, Any]:
    """The ConfigMap carrying a small code bundle, owned by (and so deleted with) the RayJob `owner`."""
    assert request.code_bundle is not None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": bundle_config_map_name(request.launch_id),
            "namespace": settings.namespace,
            "labels": {
                LABEL_COMPONENT: "rayjob",
                LABEL_JOB_ID: str(request.job_id),
                LABEL_LAUNCH_ID: request.launch_id,
            },
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "binaryData": {BUNDLE_FILE: base64.b64encode(request.code_bundle).decode()},
    }


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
        infrastructure = error_type in INFRASTRUCTURE_ERROR_TYPES
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
