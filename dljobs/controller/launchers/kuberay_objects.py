"""KubeRay objects for one job attempt: the RayJob (its own Ray cluster) and the ConfigMap that carries a
small code bundle. Pure functions of a `LaunchRequest` and a `RayJobTemplate`; `kuberay.py` sends them.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Any

import yaml

from dljobs.controller.launchers.base import LaunchError, LaunchRequest
from dljobs.controller.launchers.kuberay_template import (
    AcceleratorPool,
    RayJobTemplate,
    cpu_quantity,
    mebibytes,
    quantity_bytes,
    restricted_container_security,
    restricted_pod_security,
)
from dljobs.controller.settings import LauncherSettings

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
