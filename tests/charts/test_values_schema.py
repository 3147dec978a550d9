"""Bad values stop `helm template` / `helm install` with a message that names the value to fix; and the policy
checks the render tests rely on do catch what they look for."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.charts import policy
from tests.charts.conftest import CHART, GPU_GROUPS, one
from tests.support.helm import Helm

Render = Callable[[str], list[dict[str, Any]]]


def gpu_group(**changes: Any) -> dict[str, Any]:
    return {"ray": {"gpuWorkerGroups": [{**copy.deepcopy(GPU_GROUPS[0]), **changes}]}}


BAD_VALUES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("typo", {"controller": {"replica": 3}}, ["/controller", "'replica' not allowed"]),
    ("no-replicas", {"controller": {"replicas": 0}}, ["/controller/replicas", "minimum"]),
    ("database-mode", {"database": {"mode": "mysql"}}, ["/database/mode", "bundled", "external"]),
    ("external-without-secret", {"database": {"mode": "external"}}, ["/database/external/existingSecret"]),
    ("launcher-kind", {"launcher": {"kind": "slurm"}}, ["/launcher/kind", "ray_jobs", "kuberay_rayjob"]),
    ("memory-quantity", {"ray": {"head": {"memory": "lots"}}}, ["/ray/head/memory", "does not match"]),
    (
        "cpu-quantity",
        {"controller": {"resources": {"limits": {"cpu": "two", "memory": "1Gi"}}}},
        ["/controller/resources/limits/cpu"],
    ),
    (
        "gpu-without-accelerator",
        {"ray": {"gpuWorkerGroups": [{k: v for k, v in GPU_GROUPS[0].items() if k != "accelerator"}]}},
        ["/ray/gpuWorkerGroups/0", "missing property 'accelerator'"],
    ),
    ("zero-gpus", gpu_group(gpusPerPod=0), ["/ray/gpuWorkerGroups/0/gpusPerPod", "minimum"]),
    ("group-name", gpu_group(name="A100_Pool"), ["/ray/gpuWorkerGroups/0/name", "does not match"]),
    (
        "tls-without-secret",
        {"ingress": {"enabled": True, "tls": {"enabled": True}}},
        ["/ingress/tls/secretName"],
    ),
    (
        "irsa-without-role",
        {"storage": {"s3": {"credentials": {"mode": "serviceAccount"}}}},
        ["/serviceAccount/annotations", "minProperties"],
    ),
    (
        "no-cluster-for-ray-jobs",
        {"ray": {"cluster": {"enabled": False}}},
        ["/launcher/kind", "kuberay_rayjob"],
    ),
    ("serving-port-taken", {"serving": {"port": 8265}}, ["/serving/port"]),
    ("serving-url", {"serving": {"httpUrl": "serve:8000"}}, ["/serving/httpUrl", "does not match"]),
    ("serving-typo", {"serving": {"drain": 5}}, ["/serving", "'drain' not allowed"]),
    ("bucket-name", {"storage": {"s3": {"bucket": "My_Bucket"}}}, ["/storage/s3/bucket"]),
    (
        "env-value-and-secret",
        {
            "controller": {
                "extraEnv": [
                    {"name": "X", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                ]
            }
        },
        ["/controller/extraEnv/0"],
    ),
    # Checks the schema cannot express run in the templates and fail the same way.
    (
        "serving-without-cluster",
        {"launcher": {"kind": "kuberay_rayjob"}, "ray": {"cluster": {"enabled": False}}},
        ["serving.enabled: Ray Serve runs on the shared RayCluster", "set serving.enabled to false"],
    ),
    (
        "min-above-max",
        gpu_group(minReplicas=3, maxReplicas=1),
        ["ray.gpuWorkerGroups[0] (a100): minReplicas 3 is above maxReplicas 1"],
    ),
    (
        "duplicate-group",
        {"ray": {"gpuWorkerGroups": [GPU_GROUPS[0], GPU_GROUPS[0]]}},
        ['ray.gpuWorkerGroups[1]: the name "a100" is used twice'],
    ),
    (
        "cpu-min-above-max",
        {"ray": {"cpuWorkers": {"minReplicas": 5, "maxReplicas": 2}}},
        ["ray.cpuWorkers: minReplicas 5 is above maxReplicas 2"],
    ),
]


@pytest.mark.parametrize(("values", "expected"), [pytest.param(v, e, id=i) for i, v, e in BAD_VALUES])
def test_bad_values_fail_naming_the_value(helm: Helm, values: dict[str, Any], expected: list[str]) -> None:
    result = helm.template(CHART, values)
    assert result.returncode != 0, f"rendered although the values are wrong: {values}"
    assert "Traceback" not in result.stderr
    for fragment in expected:
        assert fragment in result.stderr, result.stderr


def test_schema_is_strict_everywhere() -> None:
    """Every object in values.schema.json forbids unknown keys (except free-form maps and Kubernetes
    passthrough such as affinity), carries a description, and every enum is non-empty."""

    schema = json.loads((CHART / "values.schema.json").read_text())
    free_form = {"affinity", "valueFrom", "namespaceSelector", "podSelector", "items"}
    problems = []

    def walk(node: dict[str, Any], path: str) -> None:
        if (
            node.get("type") == "object"
            and "properties" in node
            and node.get("additionalProperties") is not False
        ):
            problems.append(f"{path}: allows unknown keys")
        for name, child in node.get("properties", {}).items():
            if "description" not in child:
                problems.append(f"{path}/{name}: no description")
            if "enum" in child:
                assert child["enum"], f"{path}/{name}"
            if name not in free_form or "properties" in child:
                walk(child, f"{path}/{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}/items")

    walk(schema, "")
    assert not problems, "\n".join(problems)


def test_policy_checks_catch_violations(render: Render) -> None:
    objects = copy.deepcopy(render("rayjob-launcher"))
    deployment = one(objects, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    container["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    container["env"].append({"name": "DLJOBS_RAY__TOKEN", "value": "plain-text-token"})
    del container["resources"]["limits"]
    cluster = one(objects, "RayCluster")
    cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["securityContext"][
        "privileged"
    ] = True
    problems = "\n".join(policy.workload_violations(objects))
    for expected in (
        "readOnlyRootFilesystem is not true",
        "capabilities are not all dropped",
        "adds capabilities",
        "DLJOBS_RAY__TOKEN is a plain value",
        "no limits.cpu",
        "RayCluster/dljobs-ray/cpu/ray-worker: privileged",
    ):
        assert expected in problems
    role = one(objects, "Role")
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]})
    role["rules"][0]["verbs"].append("patch")
    rbac = "\n".join(
        policy.rbac_violations(objects, {("ray.io", "rayjobs"): {"create", "get", "list", "watch", "delete"}})
    )
    assert "wildcard in verbs" in rbac and "['patch'] on ray.io/rayjobs" in rbac
    secret = one(objects, "Secret", "dljobs-ray-auth")
    one(objects, "ConfigMap")["data"]["leak"] = base64.b64decode(secret["data"]["auth_token"]).decode()
    assert policy.leaked_secret_violations(objects) == [
        "ConfigMap/dljobs-rayjob-template: holds a Secret's value"
    ]
