"""A sweep as the controller runs it: the runner submitted as a Ray job runs Tune, each trial a one-worker
TorchTrainer; trials report their metric points with their number and their rows live; the best trial's
model, card and metrics become the job's artifacts, with sweep.json and the sweep.png report."""

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
            "algorithm": "random",
            "trials": 4,
            "max_concurrent": 1,
            "space": {
                "training.optimizer.lr": {"loguniform": [1.0e-3, 3.0e-2]},
                "workload.params.hidden": {"grid": [[16], [64]]},
            },
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
def test_a_tiny_sweep_runs_its_trials_and_keeps_the_best_model(ray_head, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
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
    assert {row["status"] for row in rows.values()} == {"succeeded"}
    assert {tuple(row["params"]["workload.params.hidden"]) for row in rows.values()} == {(16,), (64,)}
    assert all(row["epochs"] == 2 and row["metric"] is not None for row in rows.values())
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
    report = json.loads((artifacts / "sweep.json").read_text())
    assert report["trials"][0]["number"] == best["number"]
    assert (artifacts / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    import torch

    served = torch.jit.load(str(artifacts / "model.ts"))
    assert served(torch.rand(2, 1, 8, 8) * 16).shape == (2, 10)
