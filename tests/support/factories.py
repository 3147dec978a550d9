"""Factories: valid specs to start from, and users, projects and tokens made through the API."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

_names = itertools.count(1)


def command_spec(**overrides: Any) -> dict[str, Any]:
    """A minimal `command:` job spec (no code bundle), deep-merged with `overrides`."""
    spec: dict[str, Any] = {
        "name": f"job-{next(_names)}",
        "workload": {"command": "echo hello"},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "timeout": "10m",
    }
    return merge(spec, overrides)


def model_spec(**overrides: Any) -> dict[str, Any]:
    """The digits MLP, small."""
    spec: dict[str, Any] = {
        "name": f"mlp-{next(_names)}",
        "workload": {"model": "mlp", "params": {"hidden": [32]}},
        "data": {"source": "builtin://digits"},
        "training": {"epochs": 2, "batch_size": 64, "seed": 7},
        "resources": {"workers": 1, "cpus_per_worker": 1},
    }
    return merge(spec, overrides)


def sweep_spec(**overrides: Any) -> dict[str, Any]:
    """The digits MLP as a small random sweep (4 trials, 2 epochs, one 1-CPU worker each)."""
    spec = model_spec(
        sweep={
            "metric": "val_accuracy",
            "mode": "max",
            "algorithm": "random",
            "trials": 4,
            "space": {
                "training.optimizer.lr": {"loguniform": [1.0e-3, 3.0e-2]},
                "workload.params.hidden": {"grid": [[16], [64]]},
            },
        },
        data={"source": "builtin://digits", "validation_split": 0.2},
    )
    return merge(spec, overrides)


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Identity:
    user: str
    token: str
    projects: list[str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Identities:
    """Users, projects and tokens made through the admin API."""

    def __init__(self, client: TestClient, admin_token: str) -> None:
        self.client = client
        self.admin = Identity("admin", admin_token, ["default"])

    def project(self, name: str | None = None, **quota: Any) -> str:
        name = name or f"proj-{next(_names)}"
        response = self.client.post(
            "/api/v1/projects", json={"name": name, "quota": quota}, headers=self.admin.headers
        )
        assert response.status_code == 201, response.text
        return name

    def user(self, *projects: str, name: str | None = None, admin: bool = False) -> Identity:
        name = name or f"user-{next(_names)}"
        response = self.client.post(
            "/api/v1/users",
            json={"name": name, "admin": admin, "projects": list(projects)},
            headers=self.admin.headers,
        )
        assert response.status_code == 201, response.text
        token = self.client.post(
            "/api/v1/tokens", json={"user": name, "name": "test"}, headers=self.admin.headers
        )
        assert token.status_code == 201, token.text
        return Identity(name, token.json()["token"], list(projects))
