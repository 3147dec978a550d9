"""The Serve config the deployer sends: one application per live version, replicas fixed or autoscaled,
draining versions kept until their time is up, deleted endpoints left out."""

from __future__ import annotations

from datetime import timedelta

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import EndpointModel, ModelVersionModel
from dljobs.controller.launchers.serve import ServeClient
from dljobs.controller.loops.deployer import Deployer
from dljobs.controller.services.auth import PrincipalCache
from dljobs.controller.services.gateway import Gateway
from dljobs.controller.settings import Settings
from dljobs.spec.serving import ServingConfig


def endpoint(name: str, **fields) -> EndpointModel:  # type: ignore[no-untyped-def]
    config = ServingConfig.model_validate(fields.pop("config", {})).model_dump(mode="json")
    return EndpointModel(name=name, status=fields.pop("status", "ready"), config=config, **fields)


def version(id_: int) -> ModelVersionModel:
    return ModelVersionModel(id=id_, artifacts_uri=f"file:///store/jobs/{id_}")


def test_the_config_lists_each_live_version_with_its_replicas(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path, serving={"http_port": 8123})
    deployer = Deployer(
        settings, None, ServeClient("http://x", None), Gateway(settings.serving, None, PrincipalCache()), "me"
    )  # type: ignore[arg-type]
    now = utcnow()
    endpoints = [
        endpoint(
            "fixed", stable_version_id=1, canary_version_id=2, config={"replicas": "2", "num_cpus": 0.25}
        ),
        endpoint(
            "auto",
            stable_version_id=3,
            draining_version_id=4,
            draining_until=now + timedelta(seconds=5),
            config={"replicas": "1..4"},
        ),
        endpoint(
            "old", stable_version_id=5, draining_version_id=6, draining_until=now - timedelta(seconds=1)
        ),
        endpoint("gone", stable_version_id=7, status="deleting"),
    ]
    config = deployer.serve_config(endpoints, {i: version(i) for i in range(1, 8)})
    assert config["http_options"] == {"host": "127.0.0.1", "port": 8123}
    apps = {a["name"]: a for a in config["applications"]}
    assert set(apps) == {
        "dljobs-fixed-v1",
        "dljobs-fixed-v2",
        "dljobs-auto-v3",
        "dljobs-auto-v4",
        "dljobs-old-v5",
    }
    fixed = apps["dljobs-fixed-v1"]
    assert (
        fixed["route_prefix"] == "/dljobs-fixed-v1"
        and fixed["args"]["artifacts_uri"] == "file:///store/jobs/1"
    )
    deployment = fixed["deployments"][0]
    assert deployment["num_replicas"] == 2 and deployment["ray_actor_options"]["num_cpus"] == 0.25
    scaled = apps["dljobs-auto-v3"]["deployments"][0]
    assert "num_replicas" not in scaled
    assert (
        scaled["autoscaling_config"]["min_replicas"] == 1
        and scaled["autoscaling_config"]["max_replicas"] == 4
    )
