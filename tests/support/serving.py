"""Helpers for registry and endpoint tests: a job made to look trained, without training it."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from sqlalchemy import update

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.engine import create_engine
from dljobs.controller.db.models import JobModel
from dljobs.storage import open_store
from tests.support.factories import model_spec
from tests.support.jobs import submit

DIGITS_CARD: dict[str, Any] = {
    "format": 1,
    "task": "classification",
    "input": {"kind": "tabular", "shape": [64], "dtype": "float32"},
    "output": {"num_classes": 10, "class_names": [str(i) for i in range(10)]},
    "metrics": {"final": {"val_accuracy": 0.9, "val_loss": 0.3}, "test": {"accuracy": 0.88}, "best": None},
    "data": {"source": "builtin://digits", "fingerprint": "f" * 64, "feature_summary": {}},
    "code_bundle": None,
    "versions": {"torch": "2"},
    "seed": 7,
}


def trained_job(api: Any, headers: dict[str, str], settings: Any, **overrides: Any) -> dict[str, Any]:
    """A job marked SUCCEEDED with a model card and a (placeholder) model.ts in the store."""
    job = submit(api, headers, model_spec(**overrides))
    store = open_store(settings.storage_url)
    store.put_bytes(f"jobs/{job['id']}/card.json", json.dumps(DIGITS_CARD).encode())
    store.put_bytes(f"jobs/{job['id']}/model.ts", b"not a real model")
    _mark_succeeded(settings.database_url, job["id"])
    return job


def trained_sweep(
    api: Any, headers: dict[str, str], settings: Any, trials: list[dict[str, Any]], *, best: int | None
) -> dict[str, Any]:
    """A sweep marked SUCCEEDED with its trial rows (reported with the job's token, as its driver does) and
    its best trial's model and card as the job's artifacts; `best=None` leaves the card without the sweep's
    section (the registry then ranks the trial rows)."""
    from tests.support.factories import sweep_spec
    from tests.support.jobs import job_token

    job = submit(api, headers, sweep_spec())
    token = job_token(settings.database_url, job["id"])
    response = api.post(f"/api/v1/jobs/{job['id']}/trials", json={"trials": trials}, headers=token)
    assert response.status_code == 200, response.text
    card = copy.deepcopy(DIGITS_CARD)
    card["spec"] = {"name": job["name"], "training": {"optimizer": {"lr": 0.03}}}
    if best is not None:
        point = next(t["params"] for t in trials if t["number"] == best)
        value = next(t["metric"] for t in trials if t["number"] == best)
        card["sweep"] = {"best_trial": best, "point": point, "metric": "val_accuracy", "value": value}
        card["sweep"]["trials"] = len(trials)
    store = open_store(settings.storage_url)
    store.put_bytes(f"jobs/{job['id']}/card.json", json.dumps(card).encode())
    store.put_bytes(f"jobs/{job['id']}/model.ts", b"the best trial's model")
    _mark_succeeded(settings.database_url, job["id"])
    return job


def _mark_succeeded(url: str, job_id: int) -> None:
    async def run() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.execute(
                update(JobModel)
                .where(JobModel.id == job_id)
                .values(status="SUCCEEDED", finished_at=utcnow(), status_reason="succeeded")
            )
        await engine.dispose()

    asyncio.run(run())


def write_tiny_classifier(store: Any, prefix: str, *, seed: int = 0, broken: bool = False) -> dict[str, Any]:
    """A real TorchScript digits-shaped classifier (64 -> 10) and its card under `prefix/`. A `broken`
    one fails on every input (for rollback tests)."""
    import io

    import torch

    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)).eval()
    traced = torch.jit.trace(module, torch.zeros(2, 64))
    if broken:
        traced = torch.jit.script(_failing_module())
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    card = dict(DIGITS_CARD)
    card["data"] = {
        **DIGITS_CARD["data"],
        "feature_summary": {
            "kind": "tabular",
            "features": [
                {"name": f"x{i}", "index": i, "bins": [0.0, 4.0, 8.0, 12.0, 16.0], "fractions": [0.25] * 4}
                for i in range(4)
            ],
        },
    }
    store.put_bytes(f"{prefix}/model.ts", buffer.getvalue())
    store.put_bytes(f"{prefix}/card.json", json.dumps(card).encode())
    return card


def _failing_module() -> Any:
    import torch

    class Failing(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("this model version is broken")

    return Failing()


def wait_endpoint(api: Any, headers: dict[str, str], name: str, check: Any = None) -> dict[str, Any]:
    """Poll `GET /endpoints/NAME` until `check(endpoint)` holds (default: status ready)."""
    import time

    from tests.support.jobs import WAIT_LIMIT

    check = check or (lambda e: e["status"] == "ready")
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        endpoint = api.get(f"/api/v1/endpoints/{name}", headers=headers).json()
        if check(endpoint):
            return endpoint  # type: ignore[no-any-return]
        if endpoint.get("status") == "failed" and not check(endpoint):
            raise AssertionError(f"endpoint {name} failed: {endpoint.get('status_reason')}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"endpoint {name} still {endpoint.get('status')}: {endpoint.get('status_reason')}"
            )
        time.sleep(0.3)


def digits_inputs(count: int, value: float = 3.0) -> list[list[float]]:
    return [[value] * 64 for _ in range(count)]
