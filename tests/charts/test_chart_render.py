"""The chart renders under every value combination, and every object it renders is valid: Kubernetes'
own schemas (1.33 and the newest shipped, strict), the KubeRay CRDs (strict), and policy.py's checks."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dljobs.controller.settings import ServingSettings
from tests.charts import policy
from tests.charts.conftest import CHART, COMBINATIONS, NAMESPACE, RELEASE, find, one
from tests.charts.kube_schemas import (
    crd_errors,
    has_kubernetes_schema,
    kubernetes_errors,
    kubernetes_versions,
)
from tests.support.helm import Helm

Render = Callable[[str], list[dict[str, Any]]]
ALL = sorted(COMBINATIONS)
LAUNCHER_VERBS = {
    ("ray.io", "rayjobs"): {"create", "get", "list", "watch", "delete"},
    ("", "configmaps"): {"create"},
}


def test_helm_lint_passes_strict(helm: Helm, tmp_path: Path) -> None:
    result = helm.run("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("combination", ALL)
def test_every_object_validates_against_its_schema(
    render: Render, kube_schemas: Path, combination: str
) -> None:
    objects = render(combination)
    assert objects, "nothing rendered"
    errors: list[str] = []
    checked_kinds = set()
    for obj in objects:
        group = obj["apiVersion"].split("/")[0]
        if group == "ray.io":
            errors += crd_errors(obj)
        elif group == "monitoring.coreos.com":
            errors += service_monitor_shape_errors(obj, objects)
        else:
            assert has_kubernetes_schema(obj), f"no Kubernetes schema for {obj['apiVersion']} {obj['kind']}"
            for version in kubernetes_versions():
                errors += kubernetes_errors(obj, version)
        checked_kinds.add(obj["kind"])
    assert not errors, "\n".join(errors)
    assert {"Deployment", "Service", "Secret", "ServiceAccount", "Job"} <= checked_kinds


def test_validators_catch_what_the_api_server_would_refuse_or_drop(
    render: Render, kube_schemas: Path
) -> None:
    """The checks above can fail: a misspelt field, a wrong type, a missing required field."""
    objects = copy.deepcopy(render("gpu-worker-groups"))
    cluster = one(objects, "RayCluster")
    cluster["spec"]["workerGroupSpecs"][1]["maxReplica"] = 3
    cluster["spec"]["workerGroupSpecs"][1]["minReplicas"] = "0"
    del cluster["spec"]["headGroupSpec"]["template"]
    errors = "\n".join(crd_errors(cluster))
    assert "'maxReplica' was unexpected" in errors
    assert "workerGroupSpecs/1/minReplicas: '0' is not of type 'integer'" in errors
    assert "'template' is a required property" in errors
    deployment = one(objects, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFs"] = True
    for version in kubernetes_versions():
        assert "readOnlyRootFs" in "\n".join(kubernetes_errors(deployment, version))


def service_monitor_shape_errors(monitor: dict[str, Any], objects: list[dict[str, Any]]) -> list[str]:
    """No schema ships for the Prometheus Operator's kinds here: check what makes a ServiceMonitor scrape."""
    if monitor["apiVersion"] != "monitoring.coreos.com/v1" or monitor["kind"] != "ServiceMonitor":
        return [f"unexpected {monitor['apiVersion']} {monitor['kind']}"]
    spec = monitor["spec"]
    errors = sorted(set(spec) - {"selector", "endpoints", "namespaceSelector", "jobLabel"})
    selector = spec["selector"]["matchLabels"]
    services = [
        s
        for s in find(objects, "Service")
        if policy.selector_matches({"matchLabels": selector}, s["metadata"]["labels"])
    ]
    if len(services) != 1:
        errors.append(f"the selector matches {len(services)} Services")
        return errors
    port_names = {p["name"] for p in services[0]["spec"]["ports"]}
    for endpoint in spec["endpoints"]:
        if endpoint.get("port") not in port_names:
            errors.append(
                f"endpoint port {endpoint.get('port')} is not a port of {services[0]['metadata']['name']}"
            )
        if not str(endpoint.get("path", "")).startswith("/"):
            errors.append("endpoint path must start with /")
    if spec["namespaceSelector"] != {"matchNames": [NAMESPACE]}:
        errors.append("namespaceSelector must name the release namespace")
    return errors


@pytest.mark.parametrize("combination", ALL)
def test_pods_are_hardened_with_limits_everywhere(render: Render, combination: str) -> None:
    violations = policy.workload_violations(render(combination))
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("combination", ALL)
def test_rbac_is_namespaced_minimal_and_without_wildcards(render: Render, combination: str) -> None:
    objects = render(combination)
    assert not policy.rbac_violations(objects, LAUNCHER_VERBS)
    roles = find(objects, "Role")
    if COMBINATIONS[combination].get("launcher", {}).get("kind") == "kuberay_rayjob":
        rules = {
            (g, r): set(rule["verbs"])
            for rule in one(objects, "Role")["rules"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
        }
        assert rules == LAUNCHER_VERBS
        binding = one(objects, "RoleBinding")
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    else:
        assert roles == [] and find(objects, "RoleBinding") == []


@pytest.mark.parametrize("combination", ALL)
def test_no_secret_value_outside_secrets(render: Render, combination: str) -> None:
    objects = render(combination)
    assert not policy.leaked_secret_violations(objects)


@pytest.mark.parametrize("combination", ALL)
def test_every_reference_resolves(render: Render, combination: str) -> None:
    """secretKeyRefs, ConfigMap volumes and ServiceAccounts name objects the chart renders, or the existing
    Secrets the values name."""
    objects = render(combination)
    values = COMBINATIONS[combination]
    external = {
        values.get("database", {}).get("external", {}).get("existingSecret"),
        values.get("controller", {}).get("bootstrapAdmin", {}).get("existingSecret"),
        values.get("ray", {}).get("auth", {}).get("existingSecret"),
        values.get("storage", {}).get("s3", {}).get("credentials", {}).get("existingSecret", "dljobs-s3"),
    } - {None, ""}
    secrets = {s["metadata"]["name"] for s in find(objects, "Secret")} | external
    config_maps = {c["metadata"]["name"] for c in find(objects, "ConfigMap")}
    accounts = {a["metadata"]["name"] for a in find(objects, "ServiceAccount")}
    problems = []
    for obj in objects:
        for pod in policy.pod_specs(obj):
            if pod.spec.get("serviceAccountName", "default") not in accounts:
                problems.append(f"{pod.where}: ServiceAccount {pod.spec.get('serviceAccountName')}")
            for volume in pod.spec.get("volumes", []):
                if "configMap" in volume and volume["configMap"]["name"] not in config_maps:
                    problems.append(f"{pod.where}: ConfigMap {volume['configMap']['name']}")
            for where, container in policy.containers(pod):
                for env in container.get("env", []):
                    if "secretKeyRef" in env.get("valueFrom", {}):
                        name, _ = policy.secret_ref(env)
                        if name not in secrets:
                            problems.append(f"{where}: {env['name']} -> Secret {name}")
        if obj["kind"] == "RayCluster" and obj["spec"]["authOptions"]["secretName"] not in secrets:
            problems.append("RayCluster authOptions.secretName")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("combination", ALL)
def test_ray_cluster_passes_kuberay_operator_checks(render: Render, combination: str) -> None:
    """What the KubeRay operator validates before it creates pods (ValidateRayClusterSpec), and what makes Ray
    see each GPU pool's accelerator type."""
    for cluster in find(render(combination), "RayCluster"):
        spec = cluster["spec"]
        assert spec["headGroupSpec"]["template"]["spec"]["containers"][0]["name"] == "ray-head"
        names = [g["groupName"] for g in spec.get("workerGroupSpecs", [])]
        assert len(names) == len(set(names))
        for group in spec.get("workerGroupSpecs", []):
            assert 0 <= group["minReplicas"] <= group["maxReplicas"]
            start = group["rayStartParams"]
            if group.get("resources"):
                assert not {"num-cpus", "num-gpus", "memory", "resources"} & set(start)
            assert "labels" not in start
            limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
            if "nvidia.com/gpu" in limits:
                accelerator = group["labels"]["ray.io/accelerator-type"]
                assert group["resources"] == {f"accelerator_type:{accelerator}": "1"}
                assert int(limits["nvidia.com/gpu"]) >= 1
            else:
                assert "resources" not in group and "labels" not in group


def test_default_install_wires_the_controller(render: Render) -> None:
    objects = render("default")
    deployment = one(objects, "Deployment", RELEASE)
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False  # the ray_jobs launcher never calls Kubernetes
    container = pod["containers"][0]
    assert container["args"] == ["server"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/v1/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/ready"
    env = policy.env_of(container)
    plain = {name: e.get("value") for name, e in env.items() if "value" in e}
    assert plain["DLJOBS_MODE"] == "cluster"
    assert plain["DLJOBS_SERVER__HOST"] == "0.0.0.0" and plain["DLJOBS_SERVER__PORT"] == "8765"
    assert plain["DLJOBS_RAY__ADDRESS"] == "http://dljobs-ray-head-svc.ml.svc.cluster.local:8265"
    assert plain["DLJOBS_SERVER__PUBLIC_URL"] == "http://dljobs.ml.svc.cluster.local:8765"
    assert plain["DLJOBS_STORAGE__URL"] == "s3://dljobs/dljobs"
    assert plain["DLJOBS_LAUNCHER__KIND"] == "ray_jobs"
    assert plain["DLJOBS_LAUNCHER__NAMESPACE"] == NAMESPACE
    assert plain["DLJOBS_LAUNCHER__RAY_IMAGE"] == "dljobs/ray:0.1.0"
    assert plain["DLJOBS_SERVING__ENABLED"] == "true"
    assert plain["DLJOBS_SERVING__HTTP_HOST"] == "0.0.0.0" and plain["DLJOBS_SERVING__HTTP_PORT"] == "8000"
    assert plain["DLJOBS_SERVING__HTTP_URL"] == "http://dljobs-ray-head-svc.ml.svc.cluster.local:8000"
    assert policy.secret_ref(env["DLJOBS_DATABASE__URL"]) == ("dljobs-postgresql", "url")
    assert policy.secret_ref(env["DLJOBS_RAY__TOKEN"]) == ("dljobs-ray-auth", "auth_token")
    assert policy.secret_ref(env["DLJOBS_AUTH__BOOTSTRAP_ADMIN_TOKEN"]) == ("dljobs-admin-token", "token")
    assert policy.secret_ref(env["AWS_ACCESS_KEY_ID"]) == ("dljobs-s3", "AWS_ACCESS_KEY_ID")
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert one(objects, "Service", RELEASE)["spec"]["ports"][0]["port"] == 8765
    assert find(objects, "Ingress") == [] and find(objects, "ServiceMonitor") == []


def test_bundled_postgresql_keeps_its_data_and_password(render: Render) -> None:
    objects = render("default")
    statefulset = one(objects, "StatefulSet", "dljobs-postgresql")
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    secret = one(objects, "Secret", "dljobs-postgresql")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert set(secret["data"]) == {"password", "url"}
    migrate = one(objects, "Job", "dljobs-migrate")
    # The bundled database exists only after install: migrate then, and before every upgrade.
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    assert migrate["spec"]["template"]["spec"]["containers"][0]["args"] == ["server", "--migrate-only"]


def test_external_database_comes_from_the_existing_secret(render: Render) -> None:
    objects = render("external-database")
    assert find(objects, "StatefulSet") == [] and find(objects, "Secret", "dljobs-postgresql") == []
    for kind, name in (("Deployment", RELEASE), ("Job", "dljobs-migrate")):
        container = one(objects, kind, name)["spec"]["template"]["spec"]["containers"][0]
        assert policy.secret_ref(policy.env_of(container)["DLJOBS_DATABASE__URL"]) == ("team-db", "dsn")
    hook = one(objects, "Job", "dljobs-migrate")["metadata"]["annotations"]["helm.sh/hook"]
    assert hook == "pre-install,pre-upgrade"


def test_gpu_worker_groups_autoscale_on_their_node_pools(render: Render) -> None:
    cluster = one(render("gpu-worker-groups"), "RayCluster")
    assert cluster["spec"]["enableInTreeAutoscaling"] is True
    groups = {g["groupName"]: g for g in cluster["spec"]["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "a100", "l4"}
    a100 = groups["a100"]
    assert (a100["minReplicas"], a100["maxReplicas"]) == (0, 2)
    assert a100["resources"] == {"accelerator_type:A100": "1"}
    assert a100["labels"] == {"ray.io/accelerator-type": "A100"}
    pod = a100["template"]["spec"]
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "8" and limits["cpu"] == "64"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Gi"}
    assert groups["l4"]["template"]["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-l4"
    }
    assert "nvidia.com/gpu" not in groups["cpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_ray_pods_share_the_token_and_s3_settings(render: Render) -> None:
    objects = render("existing-secrets-and-monitoring")
    cluster = one(objects, "RayCluster")
    assert cluster["spec"]["authOptions"] == {"mode": "token", "secretName": "ray-token"}
    controller_env = policy.env_of(one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    assert policy.secret_ref(controller_env["DLJOBS_RAY__TOKEN"]) == ("ray-token", "auth_token")
    assert controller_env["DLJOBS_STORAGE__URL"]["value"] == "s3://ml-artifacts/teams/vision"
    assert controller_env["DLJOBS_STORAGE__S3_ENDPOINT_URL"]["value"] == "http://seaweedfs.storage:8333"
    assert policy.secret_ref(controller_env["DLJOBS_AUTH__BOOTSTRAP_ADMIN_TOKEN"]) == (
        "dljobs-admin",
        "admin-token",
    )
    for pod in policy.pod_specs(cluster):
        env = policy.env_of(pod.spec["containers"][0])
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert policy.secret_ref(env["RAY_AUTH_TOKEN"]) == ("ray-token", "auth_token")
        assert env["DLJOBS_S3_ENDPOINT_URL"]["value"] == "http://seaweedfs.storage:8333"
        assert policy.secret_ref(env["AWS_SECRET_ACCESS_KEY"]) == ("dljobs-s3", "AWS_SECRET_ACCESS_KEY")
    # Only the bundled database's password is generated: every other secret came from the values.
    assert [s["metadata"]["name"] for s in find(objects, "Secret")] == ["dljobs-postgresql"]
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    # /metrics answers only an admin token: Prometheus sends one from a Secret
    assert monitor["spec"]["endpoints"][0]["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "dljobs-metrics-token", "key": "token"},
    }


def test_irsa_uses_the_role_annotation_and_no_static_keys(render: Render) -> None:
    objects = render("irsa")
    role = "arn:aws:iam::123456789012:role/dljobs"
    for account in (RELEASE, "dljobs-ray"):
        assert one(objects, "ServiceAccount", account)["metadata"]["annotations"] == {
            "eks.amazonaws.com/role-arn": role
        }
    for obj in objects:
        for pod in policy.pod_specs(obj):
            for where, container in policy.containers(pod):
                assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(policy.env_of(container)), (
                    where
                )
    for pod in policy.pod_specs(one(objects, "RayCluster")):
        assert pod.spec["serviceAccountName"] == "dljobs-ray"
        assert policy.env_of(pod.spec["containers"][0])["AWS_REGION"]["value"] == "eu-west-1"


def test_ingress_serves_tls_for_the_host(render: Render) -> None:
    ingress = one(render("ingress-tls"), "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["dljobs.ml.example.org"], "secretName": "dljobs-tls"}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": RELEASE, "port": {"name": "http"}}
    container = one(render("ingress-tls"), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert policy.env_of(container)["DLJOBS_SERVER__PUBLIC_URL"]["value"] == "https://dljobs.ml.example.org"


def test_rayjob_launcher_gets_its_role_token_and_template(render: Render) -> None:
    objects = render("rayjob-launcher")
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    env = policy.env_of(pod["containers"][0])
    assert env["DLJOBS_LAUNCHER__KIND"]["value"] == "kuberay_rayjob"
    assert env["DLJOBS_LAUNCHER__RAYJOB_TTL_SECONDS"]["value"] == "600"
    assert env["DLJOBS_LAUNCHER__RAYJOB_TEMPLATE_FILE"]["value"] == "/etc/dljobs/rayjob/template.json"
    assert one(objects, "ConfigMap", "dljobs-rayjob-template")
    only = render("rayjob-only")
    assert find(only, "RayCluster") == []
    assert "DLJOBS_RAY__ADDRESS" not in policy.env_of(
        one(only, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    )


def test_network_policy_lets_only_the_controller_and_ray_reach_the_head(render: Render) -> None:
    objects = render("rayjob-launcher")
    policies = find(objects, "NetworkPolicy")
    pods = {pod.where: pod.labels for obj in objects for pod in policy.pod_specs(obj)}
    head = pods["RayCluster/dljobs-ray/head"]
    controller = pods[f"Deployment/{RELEASE}"]
    migrations = pods["Job/dljobs-migrate"]
    postgres = pods["StatefulSet/dljobs-postgresql"]
    worker = pods["RayCluster/dljobs-ray/a100"]
    stranger = {"app": "notebook"}
    for port in (8265, 6379):
        assert policy.ingress_allowed(policies, head, controller, port)
        assert policy.ingress_allowed(policies, head, worker, port)
        for source in (migrations, postgres, stranger):
            assert not policy.ingress_allowed(policies, head, source, port)
    assert policy.ingress_allowed(policies, head, worker, 40000)  # raylets, object transfer
    assert not policy.ingress_allowed(policies, head, controller, 10001)
    # A job's own Ray cluster (RayJob launcher): the controller and the KubeRay operator read its dashboard.
    job_head = {"app.kubernetes.io/instance": RELEASE, "dljobs.io/component": "rayjob", "ray.io/cluster": "x"}
    assert policy.ingress_allowed(policies, job_head, controller, 8265)
    assert policy.ingress_allowed(
        policies, job_head, {"app.kubernetes.io/name": "kuberay-operator"}, 8265, source_in_namespace=False
    )
    assert not policy.ingress_allowed(policies, job_head, stranger, 8265)
    assert not policy.ingress_allowed(policies, job_head, head, 6379)
    # PostgreSQL: the controller and the migrations only.
    assert policy.ingress_allowed(policies, postgres, controller, 5432)
    assert policy.ingress_allowed(policies, postgres, migrations, 5432)
    assert not policy.ingress_allowed(policies, postgres, worker, 5432)


def head_ports(objects: list[dict[str, Any]]) -> dict[str, int]:
    head = one(objects, "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    return {port["name"]: port["containerPort"] for port in head["ports"]}


def test_serving_settings_reach_the_controller_and_the_ray_head(render: Render) -> None:
    """The controller's serving settings come from the values (as ServingSettings reads them), and Serve's
    proxy port is on the head container, which KubeRay publishes on the head Service."""
    objects = render("serving-tuned")
    container = one(objects, "Deployment", RELEASE)["spec"]["template"]["spec"]["containers"][0]
    plain = {name: e["value"] for name, e in policy.env_of(container).items() if "value" in e}
    serving = ServingSettings.model_validate(
        {
            key.removeprefix("DLJOBS_SERVING__").lower(): value
            for key, value in plain.items()
            if key.startswith("DLJOBS_SERVING__")
        }
    )
    assert serving.enabled and serving.http_host == "0.0.0.0" and serving.http_port == 8300
    assert serving.serve_url == "http://serve-proxy.ml.svc.cluster.local:8300"
    assert (serving.drain_seconds, serving.route_ttl, serving.stats_window) == (60, 0.5, 600)
    assert head_ports(objects)["serve"] == 8300
    assert head_ports(render("default"))["serve"] == 8000
    # No shared cluster, no Serve: the deployer stays off and nothing points at a proxy.
    objects = render("rayjob-only")
    env = policy.env_of(one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    assert env["DLJOBS_SERVING__ENABLED"]["value"] == "false"
    assert "DLJOBS_SERVING__HTTP_URL" not in env


def test_network_policy_lets_only_the_controller_reach_serve(render: Render) -> None:
    for combination, port in (("default", 8000), ("serving-tuned", 8300)):
        objects = render(combination)
        policies = find(objects, "NetworkPolicy")
        pods = {pod.where: pod.labels for obj in objects for pod in policy.pod_specs(obj)}
        controller = pods[f"Deployment/{RELEASE}"]
        for target in (pods["RayCluster/dljobs-ray/head"], pods["RayCluster/dljobs-ray/cpu"]):
            assert policy.ingress_allowed(policies, target, controller, port)
            assert policy.ingress_allowed(policies, target, pods["RayCluster/dljobs-ray/cpu"], port)
            for source in (pods["Job/dljobs-migrate"], pods["StatefulSet/dljobs-postgresql"], {"app": "x"}):
                assert not policy.ingress_allowed(policies, target, source, port)
        assert not policy.ingress_allowed(policies, pods["RayCluster/dljobs-ray/head"], controller, 8001)


def test_network_policy_switch_turns_them_off(render: Render) -> None:
    assert find(render("network-policy-off"), "NetworkPolicy") == []
    assert len(find(render("default"), "NetworkPolicy")) == 2


def test_generated_secrets_are_random_per_install(helm: Helm) -> None:
    """Without a live cluster (no lookup result) each render generates new tokens; on a cluster the lookup in
    dljobs.stableSecretValue keeps the live ones."""
    first, second = (helm.render(CHART, show_only="templates/secrets.yaml") for _ in range(2))
    tokens = [{s["metadata"]["name"]: s["data"] for s in docs} for docs in (first, second)]
    assert tokens[0].keys() == {"dljobs-admin-token", "dljobs-ray-auth"}
    assert tokens[0]["dljobs-ray-auth"] != tokens[1]["dljobs-ray-auth"]
    assert all(len(s["metadata"]["annotations"]) == 1 for s in first)


def test_notes_say_how_to_reach_the_controller_and_log_in(helm: Helm) -> None:
    """NOTES.txt, as `helm install` prints it (a client-side dry run needs no cluster)."""
    result = helm.run(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--dry-run=client",
        "--set",
        "ingress.enabled=true,ingress.host=dljobs.example.org",
        "--set",
        "ingress.tls.enabled=true,ingress.tls.secretName=tls",
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "URL=https://dljobs.example.org" in notes
    assert "kubectl -n ml get secret dljobs-admin-token -o jsonpath='{.data.token}' | base64 -d" in notes
    assert 'dljobs login "$URL" --token "$TOKEN"' in notes
    assert "dashboard is at $URL/ui/" in notes
