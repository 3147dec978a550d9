"""Tests of what runs inside Ray: data sets, models, the training loop."""

from __future__ import annotations

from typing import Any

from dljobs.spec.job import JobSpec


def job_spec(source: str, model: str = "mlp", params: dict[str, Any] | None = None, **data: Any) -> JobSpec:
    """A validated job spec for `model` on `source`, with `data` fields set."""
    return JobSpec.model_validate(
        {
            "name": "t",
            "workload": {"model": model, "params": params or {}},
            "data": {"source": source, **data},
        }
    )
