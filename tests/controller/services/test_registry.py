"""The registry's service: a succeeded sweep registers its best trial's model (as the reconciler calls it on
success), with the sweep job and the trial in the lineage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dljobs.controller.db.engine import create_engine, session_factory
from dljobs.controller.db.models import JobModel
from dljobs.controller.errors import ApiError
from dljobs.controller.services import registry
from dljobs.storage import open_store
from tests.support.serving import trained_sweep


def _trial(number: int, metric: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "number": number,
        "status": "succeeded",
        "params": {"training.optimizer.lr": 0.01 * number},
        "metric": metric,
        "epochs": 3,
        **extra,
    }


TRIALS = [
    _trial(1, 0.91),
    _trial(2, 0.97, best_epoch=2, checkpoint="trials/2/checkpoint_000001"),
    _trial(3, 0.42),
]


def _register(settings: Any, job_id: int, trial: int | None = None) -> tuple[Any, ...]:
    """What the reconciler does when the job succeeded: the card from the store, then register_version."""
    store = open_store(settings.storage_url)

    async def run() -> tuple[Any, ...]:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                job = await session.get(JobModel, job_id)
                assert job is not None
                card = await registry.read_card(store, job_id)
                assert card is not None
                version = await registry.register_version(session, store, job, card, trial_id=trial)
                return version.version, version.trial_id, version.lineage, version.metrics
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_a_succeeded_sweep_registers_its_best_trials_model(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    job = trained_sweep(api, identities.admin.headers, settings, TRIALS, best=2)
    number, trial, lineage, metrics = _register(settings, job["id"])
    assert (number, trial) == (1, 2)
    assert metrics["val_accuracy"] == 0.9  # the card's figures: the best trial's
    assert lineage["job_id"] == job["id"] and lineage["trial"] == 2
    assert lineage["spec"]["sweep"]["metric"] == "val_accuracy"  # the sweep's own spec
    assert lineage["trial_spec"]["training"]["optimizer"]["lr"] == 0.03  # the trial's resolved spec
    assert lineage["sweep"] == {
        "job_id": job["id"],
        "job_name": job["name"],
        "trial": 2,
        "point": {"training.optimizer.lr": 0.02},
        "metric": "val_accuracy",
        "value": 0.97,
        "trials": 3,
        "best_epoch": 2,
        "checkpoint": "trials/2/checkpoint_000001",
    }
    # registering again (a second controller, a retried transaction) keeps the one version
    assert _register(settings, job["id"])[:2] == (1, 2)
    assert _register(settings, job["id"], trial=2)[:2] == (1, 2)


def test_without_the_cards_sweep_section_the_trial_rows_name_the_best(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    job = trained_sweep(api, identities.admin.headers, settings, TRIALS, best=None)
    _, trial, lineage, _ = _register(settings, job["id"])
    assert trial == 2 and lineage["sweep"]["point"] == {"training.optimizer.lr": 0.02}
    assert lineage["sweep"]["value"] == 0.97


def test_a_trial_whose_model_the_sweep_did_not_keep_is_refused(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    job = trained_sweep(api, identities.admin.headers, settings, TRIALS, best=2)
    with pytest.raises(ApiError) as refused:
        _register(settings, job["id"], trial=1)
    assert refused.value.status == 422 and [d.path for d in refused.value.details] == ["trial"]
    assert "best trial (2)" in refused.value.message
