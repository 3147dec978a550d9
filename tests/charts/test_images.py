"""The images the chart runs and the chart agree: versions, users, ports (the images cannot be built here)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from typing import Any

import yaml

from tests.charts import policy
from tests.charts.conftest import CHART
from tests.charts.kube_schemas import PROJECT_ROOT

DOCKER = PROJECT_ROOT / "docker"


def build_args(dockerfile: str) -> dict[str, str]:
    text = (DOCKER / dockerfile).read_text()
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.M))


def test_versions_agree_across_package_chart_and_images() -> None:
    version = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart["appVersion"] == version
    assert build_args("controller.Dockerfile")["DLJOBS_VERSION"] == version
    ray = build_args("ray.Dockerfile")
    assert ray["DLJOBS_VERSION"] == version
    assert ray["RAY_VERSION"] == values["ray"]["rayVersion"] == "2.60.0"
    assert ray["TORCH_VERSION"] == "2.13.0"


def test_images_run_as_the_users_the_chart_expects(render: Callable[[str], list[dict[str, Any]]]) -> None:
    controller = (DOCKER / "controller.Dockerfile").read_text()
    ray = (DOCKER / "ray.Dockerfile").read_text()
    assert "USER 10001:10001" in controller and 'CMD ["server"]' in controller and "EXPOSE 8765" in controller
    assert "USER 1000:1000" in ray and "wget" in ray and "smart_open[s3]" in ray
    uids = {
        pod.where: pod.spec["securityContext"]["runAsUser"]
        for obj in render("default")
        for pod in policy.pod_specs(obj)
    }
    assert uids["Deployment/dljobs"] == uids["Job/dljobs-migrate"] == 10001
    assert {uid for where, uid in uids.items() if where.startswith("RayCluster/")} == {1000}
