"""Helpers for registry and endpoint tests: a job made to look trained, without training it."""

from __future__ import annotations

import asyncio
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

    async def run() -> None:
        engine = create_engine(settings.database_url)
        async with engine.begin() as connection:
            await connection.execute(
                update(JobModel)
                .where(JobModel.id == job["id"])
                .values(status="SUCCEEDED", finished_at=utcnow(), status_reason="succeeded")
            )
        await engine.dispose()

    asyncio.run(run())
    return job
