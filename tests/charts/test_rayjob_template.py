"""The chart and the RayJob launcher agree: the template the chart renders loads into RayJobTemplate (which
forbids unknown keys), and the RayJobs built from it validate and fall under the chart's NetworkPolicy."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dljobs.controller.launchers.base import LaunchRequest
from dljobs.controller.launchers.kuberay import RayJobLauncher
from dljobs.controller.launchers.kuberay_objects import build_rayjob
from dljobs.controller.launchers.kuberay_template import RayJobTemplate
from dljobs.controller.settings import LauncherSettings, Settings
from tests.charts import policy
from tests.charts.conftest import CHART, NAMESPACE, RELEASE, find, one
from tests.charts.kube_schemas import crd_errors
from tests.support.helm import Helm

Render = Callable[[str], list[dict[str, Any]]]


def chart_template(objects: list[dict[str, Any]]) -> RayJobTemplate:
    return RayJobTemplate.model_validate_json(
        one(objects, "ConfigMap", "dljobs-rayjob-template")["data"]["template.json"]
    )


def launcher_settings(objects: list[dict[str, Any]]) -> LauncherSettings:
    env = policy.env_of(one(objects, "Deployment", RELEASE)["spec"]["template"]["spec"]["containers"][0])
    return LauncherSettings(
        kind=env["DLJOBS_LAUNCHER__KIND"]["value"],
        namespace=env["DLJOBS_LAUNCHER__NAMESPACE"]["value"],
        rayjob_ttl_seconds=int(env["DLJOBS_LAUNCHER__RAYJOB_TTL_SECONDS"]["value"]),
        ray_image=env["DLJOBS_LAUNCHER__RAY_IMAGE"]["value"],
    )


def test_chart_template_builds_valid_rayjobs_under_the_network_policy(render: Render) -> None:
    objects = render("rayjob-launcher")
    template = chart_template(objects)
    settings = launcher_settings(objects)
    assert settings.namespace == NAMESPACE
    assert template.auth_secret == "dljobs-ray-auth" and template.service_account == "dljobs-ray"
    # The maxima of the chart's worker groups: cpu 4x4, a100 2x64 CPUs / 2x8 GPUs, l4 6x8 CPUs / 6x1 GPU.
    assert template.capacity.cpus == 192 and template.capacity.gpus == 22
    assert template.capacity.accelerators == {"A100": 16, "L4": 6}
    assert template.accelerators["A100"].node_selector == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    [job_policy] = [p for p in find(objects, "NetworkPolicy") if p["metadata"]["name"] == "dljobs-rayjobs"]
    controller = one(objects, "Deployment", RELEASE)["spec"]["template"]["metadata"]["labels"]
    for resources in (
        {"workers": 2, "cpus_per_worker": 4},
        {"workers": 2, "gpus_per_worker": 8, "accelerator": "A100"},
    ):
        launch = LaunchRequest(
            launch_id="dljobs-9-2", job_id=9, attempt=2, entrypoint="python -m x", env={}, **resources
        )
        rayjob = build_rayjob(launch, settings, template)
        assert crd_errors(rayjob) == []
        assert policy.workload_violations([rayjob]) == []
        env = policy.env_of(
            rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
        )
        assert policy.secret_ref(env["AWS_ACCESS_KEY_ID"]) == ("dljobs-s3", "AWS_ACCESS_KEY_ID")
        for pod in policy.pod_specs(rayjob):
            assert policy.selector_matches(job_policy["spec"]["podSelector"], pod.labels), pod.where
            assert policy.ingress_allowed([job_policy], pod.labels, controller, 8265)
            assert not policy.ingress_allowed([job_policy], pod.labels, {"app": "other"}, 8265)


def test_capacity_override_and_irsa_reach_the_template(helm: Helm) -> None:
    objects = helm.render(
        CHART,
        {
            "launcher": {
                "kind": "kuberay_rayjob",
                "rayJob": {"capacity": {"cpus": 64, "gpus": 8, "accelerators": {"H100": 8}}},
            },
            "storage": {"s3": {"credentials": {"mode": "serviceAccount"}}},
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}},
        },
    )
    template = chart_template(objects)
    assert template.capacity.model_dump() == {"cpus": 64, "gpus": 8, "accelerators": {"H100": 8}}
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & {e["name"] for e in template.env}


@pytest.mark.parametrize("combination", ["default", "rayjob-launcher", "existing-secrets-and-monitoring"])
def test_controller_env_is_what_the_settings_read(
    render: Render, combination: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every DLJOBS_* variable the chart sets names a field of Settings (which would silently ignore a typo),
    and the controller's settings parse from the Deployment's environment."""
    objects = render(combination)
    container = one(objects, "Deployment", RELEASE)["spec"]["template"]["spec"]["containers"][0]
    for key in [k for k in os.environ if k.startswith("DLJOBS_")]:
        monkeypatch.delenv(key)
    for name, env in policy.env_of(container).items():
        if name.startswith("DLJOBS_") and name != "DLJOBS_HOME":
            model: Any = Settings
            for part in name.removeprefix("DLJOBS_").lower().split("__"):
                assert part in model.model_fields, f"{name}: Settings has no field {part}"
                model = model.model_fields[part].annotation
        value = env.get("value", f"secret-from-{name.lower()}")
        if name == "DLJOBS_LAUNCHER__RAYJOB_TEMPLATE_FILE":  # the mounted ConfigMap
            value = str(tmp_path / "template.json")
            Path(value).write_text(one(objects, "ConfigMap")["data"]["template.json"])
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.mode == "cluster" and settings.home == Path("/var/lib/dljobs")
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 8765)
    assert settings.launcher.namespace == NAMESPACE
    assert settings.ray.resolved_token() == "secret-from-dljobs_ray__token"
    assert settings.storage.url.startswith("s3://")
    if settings.launcher.kind == "kuberay_rayjob":
        launcher = RayJobLauncher(settings, api_client=object())
        assert launcher.template == chart_template(objects)
    else:
        assert settings.ray.address == "http://dljobs-ray-head-svc.ml.svc.cluster.local:8265"
