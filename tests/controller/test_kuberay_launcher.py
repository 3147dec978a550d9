"""The RayJob launcher: the RayJob objects it builds (validated against KubeRay's CRD schema, strict), the
mapping of real RayJob status shapes, and the launcher's calls: against a small stand-in for the Kubernetes
API (no API server can run here) and the session's real Ray head for logs and Ray's error types."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import yaml

from dljobs.controller.launchers.base import LaunchError, LaunchRequest, LaunchState
from dljobs.controller.launchers.kuberay import RayJobLauncher, launch_status
from dljobs.controller.launchers.kuberay_objects import (
    CONFIGMAP_BUNDLE_LIMIT,
    build_bundle_config_map,
    build_rayjob,
)
from dljobs.controller.launchers.kuberay_template import AcceleratorPool, CapacityLimits, RayJobTemplate
from dljobs.controller.settings import LauncherSettings, RaySettings, Settings
from tests.charts import policy
from tests.charts.kube_schemas import crd_errors, kubernetes_errors, kubernetes_versions

SETTINGS = LauncherSettings(
    kind="kuberay_rayjob", namespace="ml", rayjob_ttl_seconds=300, ray_image="dljobs/ray:0.1.0"
)
GPU_TAINT = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
TEMPLATE = RayJobTemplate(
    auth_secret="dljobs-ray-auth",
    service_account="dljobs-ray",
    labels={"app.kubernetes.io/part-of": "dljobs", "app.kubernetes.io/instance": "dljobs"},
    env=[
        {"name": "DLJOBS_S3_ENDPOINT_URL", "value": "http://seaweedfs:8333"},
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "dljobs-s3", "key": "id"}}},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "dljobs-s3", "key": "key"}}},
        {"name": "HOME", "value": "/tmp"},
    ],
    gpu_tolerations=[GPU_TAINT],
    accelerators={
        "A100": AcceleratorPool(node_selector={"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}),
        "L4": AcceleratorPool(
            node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
            tolerations=[{"key": "pool", "operator": "Equal", "value": "l4", "effect": "NoSchedule"}],
        ),
    },
    capacity=CapacityLimits(cpus=160, gpus=22, accelerators={"A100": 16, "L4": 6}),
)


def request(**changes: Any) -> LaunchRequest:
    fields: dict[str, Any] = {
        "launch_id": "dljobs-42-1",
        "job_id": 42,
        "attempt": 1,
        "entrypoint": "python -m dljobs.workloads.runner",
        "env": {"DLJOBS_JOB_ID": "42", "DLJOBS_ARTIFACTS_URL": "s3://dljobs/jobs/42"},
        **changes,
    }
    return LaunchRequest(**fields)


def workers_of(rayjob: dict[str, Any]) -> dict[str, Any]:
    [group] = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    return group


def assert_valid(rayjob: dict[str, Any]) -> None:
    assert crd_errors(rayjob) == []
    assert policy.workload_violations([rayjob]) == []


def test_cpu_only_job_gets_its_own_fixed_size_cluster() -> None:
    rayjob = build_rayjob(request(workers=3, cpus_per_worker=2.0), SETTINGS, TEMPLATE)
    assert_valid(rayjob)
    assert rayjob["metadata"]["name"] == "dljobs-42-1" and rayjob["metadata"]["namespace"] == "ml"
    assert rayjob["metadata"]["labels"]["dljobs.io/job-id"] == "42"
    spec = rayjob["spec"]
    assert spec["jobId"] == "dljobs-42-1"
    assert spec["entrypoint"] == "python -m dljobs.workloads.runner"
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == 300
    assert spec["backoffLimit"] == 0
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"env_vars": request().env}
    cluster = spec["rayClusterSpec"]
    assert cluster["enableInTreeAutoscaling"] is False
    assert cluster["authOptions"] == {"mode": "token", "secretName": "dljobs-ray-auth"}
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    group = workers_of(rayjob)
    assert (group["replicas"], group["minReplicas"], group["maxReplicas"]) == (3, 3, 3)
    container = group["template"]["spec"]["containers"][0]
    assert container["image"] == "dljobs/ray:0.1.0"
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "8192Mi"}
    assert "nodeSelector" not in group["template"]["spec"] and "resources" not in group
    env = policy.env_of(container)
    assert policy.secret_ref(env["RAY_AUTH_TOKEN"]) == ("dljobs-ray-auth", "auth_token")
    assert env["DLJOBS_S3_ENDPOINT_URL"]["value"] == "http://seaweedfs:8333"


def test_gpu_job_lands_on_its_accelerator_pool() -> None:
    rayjob = build_rayjob(
        request(workers=4, cpus_per_worker=8, gpus_per_worker=2, accelerator="L4", entrypoint_cpus=1.5),
        SETTINGS,
        TEMPLATE,
    )
    assert_valid(rayjob)
    group = workers_of(rayjob)
    assert group["groupName"] == "gpu-l4"
    assert group["resources"] == {"accelerator_type:L4": "1"}
    assert group["labels"] == {"ray.io/accelerator-type": "L4"}
    pod = group["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["tolerations"] == [GPU_TAINT, TEMPLATE.accelerators["L4"].tolerations[0]]
    # The driver's CPUs are reserved on the head, which runs nothing else.
    assert rayjob["spec"]["entrypointNumCpus"] == 1.5
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "2"
    assert head["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "2"


def test_multi_worker_fractional_resources_round_up_per_pod() -> None:
    rayjob = build_rayjob(request(workers=16, cpus_per_worker=0.5, gpus_per_worker=0.5), SETTINGS, TEMPLATE)
    assert_valid(rayjob)
    group = workers_of(rayjob)
    assert group["groupName"] == "gpu" and group["maxReplicas"] == 16
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "500m", "memory": "2048Mi", "nvidia.com/gpu": "1"}
    assert group["template"]["spec"]["tolerations"] == [GPU_TAINT]


def test_memory_per_worker_from_the_request_metadata() -> None:
    rayjob = build_rayjob(request(metadata={"memory_per_worker": str(3 * 2**30)}), SETTINGS, TEMPLATE)
    assert (
        workers_of(rayjob)["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "3072Mi"
    )


def test_unknown_accelerator_is_the_users_error_naming_the_field() -> None:
    with pytest.raises(LaunchError, match=r"resources.accelerator: no GPU node pool serves 'H200'") as caught:
        build_rayjob(request(gpus_per_worker=1, accelerator="H200"), SETTINGS, TEMPLATE)
    assert caught.value.infrastructure is False
    assert "A100, L4" in str(caught.value)


def test_code_bundle_goes_through_s3_when_given_a_uri() -> None:
    rayjob = build_rayjob(
        request(code_bundle=b"PK" * 10, metadata={"code_uri": "s3://dljobs/bundles/ab.zip"}),
        SETTINGS,
        TEMPLATE,
    )
    assert yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"])["working_dir"] == "s3://dljobs/bundles/ab.zip"
    assert all(v["name"] != "code" for v in rayjob["spec"]["submitterPodTemplate"]["spec"]["volumes"])


def test_small_code_bundle_rides_in_a_config_map_owned_by_the_rayjob() -> None:
    bundle = b"PK\x03\x04" + bytes(range(256)) * 8
    launch = request(code_bundle=bundle)
    rayjob = build_rayjob(launch, SETTINGS, TEMPLATE)
    assert_valid(rayjob)
    assert (
        yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"])["working_dir"] == "/var/run/dljobs/code/bundle.zip"
    )
    submitter = rayjob["spec"]["submitterPodTemplate"]["spec"]
    assert submitter["restartPolicy"] == "Never"
    assert {"name": "code", "configMap": {"name": "dljobs-42-1-code"}} in submitter["volumes"]
    owner = {**rayjob, "metadata": {**rayjob["metadata"], "uid": str(uuid.uuid4())}}
    config_map = build_bundle_config_map(launch, SETTINGS, owner)
    assert base64.b64decode(config_map["binaryData"]["bundle.zip"]) == bundle
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
    for version in kubernetes_versions():
        assert kubernetes_errors(config_map, version) == []


def test_large_bundle_without_a_uri_cannot_launch() -> None:
    with pytest.raises(LaunchError, match="needs it in S3") as caught:
        build_rayjob(request(code_bundle=b"x" * (CONFIGMAP_BUNDLE_LIMIT + 1)), SETTINGS, TEMPLATE)
    assert caught.value.infrastructure is False


# -- status mapping, on the shapes KubeRay writes ---------------------------------------------------------

RUNNING_CLUSTER = {
    "dashboardURL": "dljobs-42-1-raycluster-x7k2p-head-svc.ml.svc.cluster.local:8265",
    "jobId": "dljobs-42-1",
    "rayClusterName": "dljobs-42-1-raycluster-x7k2p",
}
STATUS_CASES = [
    ("new", {}, None, LaunchState.PENDING, False),
    (
        "initializing",
        {"jobDeploymentStatus": "Initializing", "jobStatus": ""},
        None,
        LaunchState.PENDING,
        False,
    ),
    (
        "submitted",
        {**RUNNING_CLUSTER, "jobDeploymentStatus": "Running", "jobStatus": "PENDING"},
        None,
        LaunchState.PENDING,
        False,
    ),
    (
        "running",
        {**RUNNING_CLUSTER, "jobDeploymentStatus": "Running", "jobStatus": "RUNNING"},
        None,
        LaunchState.RUNNING,
        False,
    ),
    (
        "succeeded",
        {
            **RUNNING_CLUSTER,
            "jobDeploymentStatus": "Complete",
            "jobStatus": "SUCCEEDED",
            "message": "Job finished successfully.",
        },
        None,
        LaunchState.SUCCEEDED,
        False,
    ),
    (
        "user-code-failed",
        {
            **RUNNING_CLUSTER,
            "jobDeploymentStatus": "Failed",
            "jobStatus": "FAILED",
            "reason": "AppFailed",
            "message": "Job entrypoint command failed with exit code 1",
        },
        "JOB_ENTRYPOINT_COMMAND_ERROR",
        LaunchState.FAILED,
        False,
    ),
    (
        "runtime-env-failed",
        {
            **RUNNING_CLUSTER,
            "jobDeploymentStatus": "Failed",
            "jobStatus": "FAILED",
            "reason": "AppFailed",
            "message": "runtime_env setup failed: pip install failed",
        },
        "RUNTIME_ENV_SETUP_FAILURE",
        LaunchState.FAILED,
        True,
    ),
    (
        "supervisor-died-dashboard-gone",
        {
            "jobDeploymentStatus": "Complete",
            "jobStatus": "FAILED",
            "message": "Job supervisor actor died: node lost",
        },
        None,
        LaunchState.FAILED,
        True,
    ),
    (
        "submission-failed",
        {
            "jobDeploymentStatus": "Failed",
            "reason": "SubmissionFailed",
            "message": "Job submission has failed. Reason: submitter Job failed",
        },
        None,
        LaunchState.FAILED,
        True,
    ),
    (
        "cluster-never-ready",
        {"jobDeploymentStatus": "Failed", "reason": "PreRunningDeadlineExceeded"},
        None,
        LaunchState.FAILED,
        True,
    ),
    (
        "grace-period",
        {"jobDeploymentStatus": "Failed", "reason": "JobDeploymentStatusTransitionGracePeriodExceeded"},
        None,
        LaunchState.FAILED,
        True,
    ),
    (
        "deadline",
        {"jobDeploymentStatus": "Failed", "reason": "DeadlineExceeded"},
        None,
        LaunchState.FAILED,
        False,
    ),
    (
        "invalid-spec",
        {
            "jobDeploymentStatus": "ValidationFailed",
            "reason": "ValidationFailed",
            "message": "The RayJob spec is invalid",
        },
        None,
        LaunchState.FAILED,
        False,
    ),
    (
        "stopped",
        {**RUNNING_CLUSTER, "jobDeploymentStatus": "Complete", "jobStatus": "STOPPED"},
        None,
        LaunchState.STOPPED,
        False,
    ),
    ("suspended", {"jobDeploymentStatus": "Suspended"}, None, LaunchState.STOPPED, False),
    ("retrying", {"jobDeploymentStatus": "Retrying", "failed": 1}, None, LaunchState.PENDING, False),
]


@pytest.mark.parametrize(
    ("status", "error_type", "state", "infrastructure"),
    [pytest.param(s, e, st, i, id=n) for n, s, e, st, i in STATUS_CASES],
)
def test_rayjob_status_maps_to_launch_status(
    status: dict[str, Any], error_type: str | None, state: LaunchState, infrastructure: bool
) -> None:
    mapped = launch_status({"metadata": {"name": "dljobs-42-1"}, "status": status}, error_type)
    assert (mapped.state, mapped.infrastructure_failure) == (state, infrastructure)
    if status.get("message"):
        assert status["message"] in mapped.message


def test_missing_and_deleting_rayjobs() -> None:
    assert launch_status(None).state == LaunchState.NOT_FOUND
    deleting = {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"jobStatus": "RUNNING"}}
    assert launch_status(deleting).state == LaunchState.STOPPED


# -- the launcher's calls -----------------------------------------------------------------------------------


class KubeApiStandIn:
    """The few Kubernetes API routes the launcher uses (custom objects, ConfigMaps), in memory, on a free
    local port. `objects` maps (plural, name) to the stored object; `calls` records (method, path, query)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.refuse_with: int | None = None
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self) -> tuple[str, str | None]:
                path, _, query = self.path.partition("?")
                stand_in.calls.append((self.command, path, query))
                parts = path.strip("/").split("/")
                plural_at = parts.index("namespaces") + 2
                return parts[plural_at], parts[plural_at + 1] if len(parts) > plural_at + 1 else None

            def _status(self, code: int, reason: str) -> None:
                self._reply(
                    code,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "code": code,
                        "reason": reason,
                        "message": f"{reason} ({code})",
                    },
                )

            def do_POST(self) -> None:
                plural, _ = self._route()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if stand_in.refuse_with:
                    return self._status(stand_in.refuse_with, "Invalid")
                key = (plural, body["metadata"]["name"])
                if key in stand_in.objects:
                    return self._status(409, "AlreadyExists")
                body["metadata"]["uid"] = str(uuid.uuid4())
                stand_in.objects[key] = body
                self._reply(201, body)

            def do_GET(self) -> None:
                plural, name = self._route()
                if name is None:
                    items = [o for (p, _), o in stand_in.objects.items() if p == plural]
                    return self._reply(200, {"apiVersion": "ray.io/v1", "kind": "RayJobList", "items": items})
                found = stand_in.objects.get((plural, name))
                return self._reply(200, found) if found else self._status(404, "NotFound")

            def do_DELETE(self) -> None:
                plural, name = self._route()
                if stand_in.objects.pop((plural, name), None) is None:
                    return self._status(404, "NotFound")
                self._reply(200, {"kind": "Status", "status": "Success"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def api_client(self) -> Any:
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def kube_api() -> Iterator[KubeApiStandIn]:
    stand_in = KubeApiStandIn()
    yield stand_in
    stand_in.close()


def launcher_for(kube_api: KubeApiStandIn, ray_token: str | None = None) -> RayJobLauncher:
    settings = Settings(launcher=SETTINGS, ray=RaySettings(token=ray_token))
    return RayJobLauncher(
        settings, template=TEMPLATE, api_client=kube_api.api_client(), log_poll_interval=0.2
    )


def test_submit_is_idempotent_and_ships_a_small_bundle(kube_api: KubeApiStandIn) -> None:
    async def scenario() -> None:
        launcher = launcher_for(kube_api)
        launch = request(code_bundle=b"PK\x05\x06" + b"\0" * 18)
        await launcher.submit(launch)
        await launcher.submit(launch)  # a second controller, or a retry after a timeout: no second RayJob
        rayjob = kube_api.objects[("rayjobs", "dljobs-42-1")]
        config_map = kube_api.objects[("configmaps", "dljobs-42-1-code")]
        assert config_map["metadata"]["ownerReferences"][0]["uid"] == rayjob["metadata"]["uid"]
        posts = [path for method, path, _ in kube_api.calls if method == "POST"]
        assert posts.count("/apis/ray.io/v1/namespaces/ml/rayjobs") == 2
        assert (await launcher.status("dljobs-42-1")).state == LaunchState.PENDING
        assert (await launcher.status("dljobs-7-1")).state == LaunchState.NOT_FOUND
        await launcher.stop("dljobs-42-1")
        assert ("DELETE", "/apis/ray.io/v1/namespaces/ml/rayjobs/dljobs-42-1") in [
            c[:2] for c in kube_api.calls
        ]
        assert (await launcher.status("dljobs-42-1")).state == LaunchState.NOT_FOUND
        await launcher.stop("dljobs-42-1")  # stopping twice is fine
        capacity = await launcher.capacity()
        assert capacity.ready and capacity.gpus == 22 and capacity.accelerators == {"A100": 16, "L4": 6}
        await launcher.close()

    asyncio.run(scenario())


def test_refused_objects_are_not_retried_and_an_unreachable_api_is(kube_api: KubeApiStandIn) -> None:
    async def scenario() -> None:
        launcher = launcher_for(kube_api)
        kube_api.refuse_with = 422
        with pytest.raises(LaunchError, match="Kubernetes refused to create a RayJob: 422") as caught:
            await launcher.submit(request())
        assert caught.value.infrastructure is False
        kube_api.close()
        with pytest.raises(LaunchError) as unreachable:
            await launcher.status("dljobs-42-1")
        assert unreachable.value.infrastructure is True
        capacity = await launcher.capacity()
        assert not capacity.ready and "Kubernetes" in capacity.message
        await launcher.close()

    asyncio.run(scenario())


def submit_ray_job(head: Any, entrypoint: str) -> str:
    """Submit straight to the head's Job API, as KubeRay's submitter would, and wait for the job to end."""
    submission_id = f"dljobs-{uuid.uuid4().hex[:8]}-1"
    headers = {"Authorization": f"Bearer {head.token}"}
    response = httpx.post(
        f"{head.dashboard_url}/api/jobs/",
        headers=headers,
        timeout=30,
        json={"entrypoint": entrypoint, "submission_id": submission_id},
    )
    assert response.status_code == 200, response.text
    while True:
        info = httpx.get(f"{head.dashboard_url}/api/jobs/{submission_id}", headers=headers, timeout=30).json()
        if info["status"] in {"SUCCEEDED", "FAILED", "STOPPED"}:
            return submission_id
        time.sleep(0.2)


@pytest.mark.ray
def test_logs_and_error_types_come_from_the_jobs_dashboard(kube_api: KubeApiStandIn, ray_head: Any) -> None:
    succeeded = submit_ray_job(ray_head, "echo hello-from-the-rayjob")
    failed = submit_ray_job(ray_head, "python -c 'import sys; print(\"bad input\"); sys.exit(3)'")
    address = ray_head.dashboard_url.removeprefix("http://")  # KubeRay writes host:port
    for launch_id, deployment, job in ((succeeded, "Complete", "SUCCEEDED"), (failed, "Failed", "FAILED")):
        kube_api.objects[("rayjobs", launch_id)] = {
            "metadata": {"name": launch_id, "uid": "u"},
            "status": {
                "dashboardURL": address,
                "jobId": launch_id,
                "jobDeploymentStatus": deployment,
                "jobStatus": job,
                "reason": "AppFailed" if job == "FAILED" else "",
            },
        }

    async def scenario() -> None:
        launcher = launcher_for(kube_api, ray_token=ray_head.token)
        assert "hello-from-the-rayjob" in await launcher.logs(succeeded)
        tailed = "".join([chunk async for chunk in launcher.tail_logs(succeeded)])
        assert "hello-from-the-rayjob" in tailed
        status = await launcher.status(failed)
        # Ray says the entrypoint failed (JOB_ENTRYPOINT_COMMAND_ERROR): the user's code, not retried.
        assert (status.state, status.infrastructure_failure) == (LaunchState.FAILED, False)
        await launcher.close()
        wrong_token = launcher_for(kube_api, ray_token="not-the-token")
        with pytest.raises(LaunchError, match="answered 403"):
            await wrong_token.logs(succeeded)
        await wrong_token.close()

    asyncio.run(scenario())
