"""A sweep as the controller runs it: the runner submitted as a Ray job runs Tune, each trial a one-worker
TorchTrainer, under ASHA; trials report their metric points with their number and their rows live; the
best trial's model, card and test metrics become the job's artifacts, with sweep.json and sweep.png."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from dljobs.spec import runtime
from tests.workloads.test_runner import check_manifest, job_env, submit_and_wait
from tests.workloads.test_runner_reporting import recording_server


def sweep_spec(**sweep: Any) -> dict[str, Any]:
    return {
        "name": "tiny-sweep",
        "workload": {"model": "mlp", "params": {"hidden": [32]}},
        "data": {"source": "builtin://digits", "validation_split": 0.2},
        "training": {"epochs": 2, "seed": 3, "batch_size": 64},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "sweep": {
            "metric": "val_accuracy",
            "mode": "max",
            "algorithm": "asha",
            "trials": 4,
            "max_concurrent": 1,
            "grace_epochs": 1,
            "reduction_factor": 2,
            # in this order: trials 2 and 4 learn next to nothing in their first epoch, so ASHA stops them
            "space": {"training.optimizer.lr": {"grid": [3.0e-2, 1.0e-5, 1.0e-2, 2.0e-5]}},
            **sweep,
        },
    }


def trial_rows(server: Any) -> dict[int, dict[str, Any]]:
    latest: dict[int, dict[str, Any]] = {}
    for request in server.requests:
        if request.path.endswith("/trials"):
            for row in request.body["trials"]:
                latest[row["number"]] = row
    return latest


@pytest.mark.ray
def test_a_tiny_asha_sweep_stops_weak_trials_and_keeps_the_best_model(ray_head, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    artifacts = tmp_path / "jobs" / "41"
    with recording_server() as server:
        env = job_env(
            sweep_spec(), "41", artifacts, **{runtime.ENV_API_URL: server.url, runtime.ENV_JOB_TOKEN: "tok"}
        )
        state, logs = submit_and_wait(ray_head, env)
        assert state == "SUCCEEDED", logs[-4000:]
        rows = trial_rows(server)
        points = [
            (r.body.get("trial"), p)
            for r in server.requests
            if r.path.endswith("/metrics")
            for p in r.body["points"]
        ]
    assert sorted(rows) == [1, 2, 3, 4], rows
    assert [rows[n]["params"]["training.optimizer.lr"] for n in (1, 2, 3, 4)] == [
        3.0e-2,
        1.0e-5,
        1.0e-2,
        2.0e-5,
    ]
    # the first trial is promoted at every rung and ends by itself, after its last epoch and test pass
    assert (rows[1]["status"], rows[1]["epochs"]) == ("succeeded", 2)
    for weak in (2, 4):  # below the first rung's cutoff: stopped after one epoch, its resources handed back
        assert (rows[weak]["status"], rows[weak]["epochs"]) == ("stopped", 1), rows[weak]
    assert all(row["metric"] is not None for row in rows.values())
    # max_concurrent 1: each trial starts once the one before it has ended (the head has room for two)
    spans = sorted((row["started_at"], row["finished_at"]) for row in rows.values())
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans)), spans
    # each trial's points carry its number; the job's own (trial None) are the best trial's test metrics
    assert {trial for trial, p in points if p["name"] == "val_accuracy"} == {1, 2, 3, 4}
    assert any(trial is None and p["name"] == "test_accuracy" for trial, p in points)
    listed = check_manifest(artifacts)
    assert {"model.pt", "model.ts", "card.json", "metrics.jsonl", "sweep.json", "sweep.png"} <= set(listed)
    card = json.loads((artifacts / "card.json").read_text())
    best = max(rows.values(), key=lambda row: row["metric"])
    assert card["sweep"]["best_trial"] == best["number"] and card["sweep"]["value"] == pytest.approx(
        best["metric"]
    )
    assert card["spec"]["training"]["optimizer"]["lr"] == pytest.approx(
        best["params"]["training.optimizer.lr"]
    )
    assert card["spec"].get("sweep") is None  # the trial's own spec
    assert rows[best["number"]]["status"] == "succeeded"
    assert card["metrics"]["test"]["test_accuracy"] > 0.5
    report = json.loads((artifacts / "sweep.json").read_text())
    assert report["trials"][0]["number"] == best["number"]
    assert (artifacts / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    import torch

    served = torch.jit.load(str(artifacts / "model.ts"))
    assert served(torch.rand(2, 1, 8, 8) * 16).shape == (2, 10)


def test_the_best_trials_test_split_is_evaluated_on_the_driver_when_a_scheduler_cut_its_own(
    tmp_path: Path,
) -> None:
    import io

    import torch

    from dljobs.spec.loading import validate_spec
    from dljobs.workloads.data import load_data
    from dljobs.workloads.models import build_model
    from dljobs.workloads.sweep import evaluate_test_split

    spec = validate_spec({k: v for k, v in sweep_spec().items() if k != "sweep"})
    prepared = load_data(spec, seed=3)
    model = build_model(spec.workload, prepared.info)
    with torch.no_grad():  # a model that always answers class 7
        for parameter in model.parameters():
            parameter.zero_()
        model.head.bias[7] = 1.0
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)

    found = evaluate_test_split(spec, prepared.info, prepared.test, buffer.getvalue())

    sevens = sum(int(target) == 7 for _, target in prepared.test)
    assert found["test_metrics"]["test_accuracy"] == pytest.approx(sevens / len(prepared.test))
    matrix = found["test_confusion_matrix"]
    assert sum(row[7] for row in matrix) == len(prepared.test)  # every example predicted as 7


@pytest.mark.parametrize(
    ("algorithm", "reused"),
    [("grid", True), ("random", True), ("bayesian", True), ("asha", False), ("median", False)],
)
def test_trial_actors_are_reused_only_where_no_scheduler_stops_trials(algorithm: str, reused: bool) -> None:
    from dljobs.spec.loading import validate_spec
    from dljobs.workloads.sweep import tune_config

    space = {"training.optimizer.lr": {"grid" if algorithm == "grid" else "choice": [1.0e-2, 1.0e-3]}}
    spec = validate_spec(sweep_spec(algorithm=algorithm, trials=2, space=space))
    assert spec.sweep is not None
    assert tune_config(spec.sweep, epochs=2, seed=3).reuse_actors is reused
