"""Policy checks on rendered objects: what a cluster admission policy (Pod Security "restricted", plus our own
rules) would refuse. Each check returns the violations it found, as readable lines."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SECRET_LIKE_NAME = re.compile(r"(TOKEN|PASSWORD|PASSWD|SECRET|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$", re.I)
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


@dataclass(frozen=True)
class PodSpecRef:
    """A pod spec found inside a rendered object, with where it was found and its pod labels."""

    where: str
    spec: dict[str, Any]
    labels: dict[str, str]
    long_running: bool  # serves or runs for long: needs probes


def pod_specs(obj: dict[str, Any]) -> Iterator[PodSpecRef]:
    kind, name = obj["kind"], obj["metadata"]["name"]
    spec = obj.get("spec", {})
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        template = spec["template"]
        yield PodSpecRef(
            f"{kind}/{name}", template["spec"], template.get("metadata", {}).get("labels", {}), kind != "Job"
        )
    elif kind == "RayCluster":
        yield from _ray_cluster_pods(f"RayCluster/{name}", name, spec)
    elif kind == "RayJob":
        yield from _ray_cluster_pods(f"RayJob/{name}", name, spec["rayClusterSpec"])
        if "submitterPodTemplate" in spec:
            template = spec["submitterPodTemplate"]
            yield PodSpecRef(
                f"RayJob/{name}/submitter",
                template["spec"],
                template.get("metadata", {}).get("labels", {}),
                False,
            )


def _ray_cluster_pods(where: str, cluster: str, spec: dict[str, Any]) -> Iterator[PodSpecRef]:
    # KubeRay adds these labels to the pods it creates.
    head = spec["headGroupSpec"]["template"]
    yield PodSpecRef(
        f"{where}/head",
        head["spec"],
        {**head.get("metadata", {}).get("labels", {}), "ray.io/cluster": cluster, "ray.io/node-type": "head"},
        False,
    )
    for group in spec.get("workerGroupSpecs", []):
        template = group["template"]
        yield PodSpecRef(
            f"{where}/{group['groupName']}",
            template["spec"],
            {
                **template.get("metadata", {}).get("labels", {}),
                "ray.io/cluster": cluster,
                "ray.io/node-type": "worker",
                "ray.io/group": group["groupName"],
            },
            False,
        )


def containers(pod: PodSpecRef) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in ("initContainers", "containers"):
        for container in pod.spec.get(key, []):
            yield f"{pod.where}/{container['name']}", container


def autoscaler_containers(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """KubeRay's autoscaler sidecar, configured through autoscalerOptions."""
    spec = obj.get("spec", {})
    if obj["kind"] == "RayJob":
        spec = spec["rayClusterSpec"]
    if obj["kind"] in {"RayCluster", "RayJob"} and spec.get("enableInTreeAutoscaling"):
        yield f"{obj['kind']}/{obj['metadata']['name']}/autoscaler", spec.get("autoscalerOptions", {})


def container_violations(where: str, container: dict[str, Any], pod_context: dict[str, Any]) -> list[str]:
    problems = []
    ctx = container.get("securityContext", {})
    if ctx.get("privileged"):
        problems.append(f"{where}: privileged")
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if ctx.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem is not true")
    caps = ctx.get("capabilities", {})
    if "ALL" not in caps.get("drop", []):
        problems.append(f"{where}: capabilities are not all dropped")
    if caps.get("add"):
        problems.append(f"{where}: adds capabilities {caps['add']}")
    run_as_non_root = ctx.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    if run_as_non_root is not True:
        problems.append(f"{where}: runAsNonRoot is not true")
    if ctx.get("runAsUser", pod_context.get("runAsUser")) == 0:
        problems.append(f"{where}: runs as uid 0")
    seccomp = ctx.get("seccompProfile", pod_context.get("seccompProfile", {}))
    if seccomp.get("type") not in {"RuntimeDefault", "Localhost"}:
        problems.append(f"{where}: no RuntimeDefault seccomp profile")
    resources = container.get("resources", {})
    for part in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in resources.get(part, {}):
                problems.append(f"{where}: no {part}.{resource}")
    for env in container.get("env", []):
        if "value" in env and SECRET_LIKE_NAME.search(env["name"]):
            problems.append(f"{where}: {env['name']} is a plain value; secrets go through secretKeyRef")
    return problems


def pod_violations(pod: PodSpecRef) -> list[str]:
    problems = []
    spec = pod.spec
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"{pod.where}: {flag}")
    for volume in spec.get("volumes", []):
        if "hostPath" in volume:
            problems.append(f"{pod.where}: hostPath volume {volume['name']}")
    if "automountServiceAccountToken" not in spec:
        problems.append(f"{pod.where}: automountServiceAccountToken is not set explicitly")
    pod_context = spec.get("securityContext", {})
    for where, container in containers(pod):
        problems += container_violations(where, container, pod_context)
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        if "/tmp" not in mounts:
            problems.append(f"{where}: read-only root filesystem without a writable /tmp")
        if pod.long_running and not ("livenessProbe" in container and "readinessProbe" in container):
            problems.append(f"{where}: no liveness and readiness probes")
    return problems


def workload_violations(objects: list[dict[str, Any]]) -> list[str]:
    problems = []
    for obj in objects:
        for pod in pod_specs(obj):
            problems += pod_violations(pod)
        for where, autoscaler in autoscaler_containers(obj):
            problems += container_violations(where, autoscaler, {})
    return problems


def rbac_violations(objects: list[dict[str, Any]], allowed: dict[tuple[str, str], set[str]]) -> list[str]:
    """No cluster-wide grants, no wildcards, and no verb beyond `allowed` ((apiGroup, resource) -> verbs)."""
    problems = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind in {"ClusterRole", "ClusterRoleBinding"}:
            problems.append(f"{kind}/{name}: cluster-wide RBAC")
        if kind != "Role":
            continue
        for rule in obj.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                if "*" in rule.get(field, []):
                    problems.append(f"Role/{name}: wildcard in {field}")
            for group in rule.get("apiGroups", []):
                for resource in rule.get("resources", []):
                    extra = set(rule.get("verbs", [])) - allowed.get((group, resource), set())
                    if extra:
                        problems.append(f"Role/{name}: {sorted(extra)} on {group or 'core'}/{resource}")
    return problems


def secret_values(objects: list[dict[str, Any]]) -> set[str]:
    values = set()
    for obj in objects:
        if obj["kind"] == "Secret":
            values |= {base64.b64decode(v).decode() for v in (obj.get("data") or {}).values()}
            values |= set((obj.get("stringData") or {}).values())
    return {v for v in values if len(v) >= 8}


def leaked_secret_violations(objects: list[dict[str, Any]]) -> list[str]:
    """No rendered Secret's value appears outside Secrets (env values, ConfigMaps, annotations...)."""
    secrets = secret_values(objects)
    problems = []
    for obj in objects:
        if obj["kind"] == "Secret":
            continue
        text = json.dumps(obj)
        problems += [
            f"{obj['kind']}/{obj['metadata']['name']}: holds a Secret's value" for s in secrets if s in text
        ]
    return problems


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {env["name"]: env for env in container.get("env", [])}


def secret_ref(env: dict[str, Any]) -> tuple[str, str]:
    ref = env["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if selector.get("matchExpressions"):
        raise AssertionError("the evaluator only understands matchLabels")
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def ingress_allowed(
    policies: list[dict[str, Any]],
    target: dict[str, str],
    source: dict[str, str],
    port: int,
    *,
    source_in_namespace: bool = True,
) -> bool:
    """Whether NetworkPolicies let a pod labelled `source` (in the release namespace unless said otherwise)
    open TCP `port` on a pod labelled `target`. Pods no policy selects accept everything."""
    selecting = [p for p in policies if selector_matches(p["spec"]["podSelector"], target)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports and not any(p.get("port") == port for p in ports):
                continue
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                if "ipBlock" in peer:
                    continue
                if "namespaceSelector" in peer:
                    if source_in_namespace:
                        continue  # our namespace is not the operator's
                    return True
                if source_in_namespace and selector_matches(peer["podSelector"], source):
                    return True
    return False
