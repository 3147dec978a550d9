"""Ray Train on the session's real Ray head: two workers learn; the same spec twice gives the same metrics; a
worker killed (SIGKILL) or stopped (SIGTERM, preemption) mid-run resumes from its checkpoint and ends where an
uninterrupted run ends; a second fit of a finished job resumes instead of training again; checkpoints and
artifacts on S3.

Each TorchTrainer fit costs ~10-15 s of start-up here, so these tests share runs where they can."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dljobs.spec.job import JobSpec
from dljobs.spec.loading import validate_spec
from dljobs.workloads.train.context import RunContext, with_seed
from tests.support.environment import environment
from tests.workloads.test_runner_reporting import recording_server, wait_for

pytestmark = pytest.mark.ray

TIMING = {"epoch_time", "samples_per_second"}
EPOCHS = 6


def slow_spec(**training: Any) -> JobSpec:
    """Digits through a wide MLP on two workers: about a second an epoch here, long enough to interrupt."""
    return validate_spec(
        {
            "name": "ray-train",
            "workload": {"model": "mlp", "params": {"hidden": [1536, 1536], "dropout": 0.1}},
            "data": {"source": "builtin://digits"},
            "training": {
                "epochs": EPOCHS,
                "batch_size": 32,
                "seed": 3,
                "checkpoint_every": 1,
                "optimizer": {"name": "adamw", "lr": 0.001},
                **training,
            },
            "resources": {"workers": 2, "cpus_per_worker": 1},
            "retries": 2,
        }
    )


@pytest.fixture(scope="module")
def ray_connected(ray_head) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """This process as a driver of the session's head, for this module. Ray reads the auth mode when it is
    first imported (maybe at collection, before the head's token exists): its auth state is reloaded."""
    import ray
    from ray._private.authentication_test_utils import reset_auth_token_state

    with environment(ray_head.env()):
        reset_auth_token_state()
        ray.init(address=ray_head.gcs_address, logging_level="WARNING")
        try:
            yield ray_head
        finally:
            ray.shutdown()
    reset_auth_token_state()


def run(spec: JobSpec, job_id: str, root: Path, **context: Any) -> dict[str, Any]:
    from dljobs.workloads.runner import run_model

    ctx = RunContext(job_id=job_id, artifacts_url=(root / job_id).as_uri(), **context)
    return run_model(with_seed(spec, spec.training.seed or 0), ctx, spec.training.seed or 0)


def without_timing(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


@pytest.fixture(scope="module")
def artifacts_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-artifacts")


@pytest.fixture(scope="module")
def baseline(ray_connected, artifacts_root: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return run(slow_spec(), "5001", artifacts_root)


def test_two_workers_learn_the_digits(baseline: dict[str, Any], artifacts_root: Path) -> None:
    assert baseline["test_metrics"]["test_accuracy"] >= 0.9
    assert [row["epoch"] for row in baseline["history"]] == list(range(1, EPOCHS + 1))
    assert baseline["history"][-1]["val_loss"] < baseline["history"][0]["val_loss"]
    assert baseline["epochs_trained"] == list(range(1, EPOCHS + 1)) and not baseline["resumed"]
    manifest = json.loads((artifacts_root / "5001" / "manifest.json").read_text())
    assert {a["name"] for a in manifest["artifacts"]} == {
        "model.pt",
        "model.ts",
        "card.json",
        "metrics.jsonl",
    }


def test_the_same_spec_twice_gives_identical_metrics(baseline, artifacts_root: Path) -> None:  # type: ignore[no-untyped-def]
    again = run(slow_spec(), "5002", artifacts_root)
    assert without_timing(again["history"]) == without_timing(baseline["history"])
    assert again["test_metrics"] == baseline["test_metrics"]


def committed(checkpoints: Path, epoch: int) -> bool:
    """Ray Train has registered the checkpoint of `epoch` (every rank's files are in)."""
    snapshot = checkpoints / "checkpoint_manager_snapshot.json"
    return snapshot.is_file() and f'"epoch-{epoch:06d}"' in snapshot.read_text()


def interrupt_when(address: str, checkpoints: Path, epoch: int, signum: int) -> threading.Thread:
    """Once the checkpoint of `epoch` is committed, send `signum` to one training worker of this cluster."""

    def watch() -> None:
        from ray.util.state import list_actors

        assert wait_for(lambda: committed(checkpoints, epoch))
        alive = [("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")]
        workers = list_actors(address=address, filters=alive)
        os.kill(int(sorted(workers, key=lambda w: w["pid"])[-1]["pid"]), signum)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("signum", "job_id"), [(signal.SIGKILL, "5003"), (signal.SIGTERM, "5004")], ids=["killed", "preempted"]
)
def test_an_interrupted_worker_resumes_from_its_checkpoint(  # type: ignore[no-untyped-def]
    ray_connected, baseline, artifacts_root: Path, signum: int, job_id: str
) -> None:
    checkpoints = artifacts_root / job_id / "checkpoints" / f"dljobs-job-{job_id}"
    with recording_server() as server:
        watcher = interrupt_when(ray_connected.gcs_address, checkpoints, 2, signum)
        result = run(slow_spec(), job_id, artifacts_root, api_url=server.url, job_token="t")
        watcher.join(timeout=5)
        epochs_reported = [p["epoch"] for p in server.points() if p["name"] == "train_loss"]
    assert result["resumed"]
    # epoch 2's checkpoint was committed before the interruption: epochs 1 and 2 are not trained again
    assert result["epochs_trained"][0] >= 3
    assert sorted(set(epochs_reported)) == list(range(1, EPOCHS + 1))
    assert all(epochs_reported.count(e) <= 2 for e in epochs_reported)  # at most one interval trained twice
    assert abs(result["test_metrics"]["test_accuracy"] - baseline["test_metrics"]["test_accuracy"]) <= 0.01
    # Resumed with the same random streams, the run ends exactly where the uninterrupted one ended.
    assert without_timing(result["history"]) == without_timing(baseline["history"])
    assert result["test_metrics"] == baseline["test_metrics"]
    if (
        signum == signal.SIGTERM
    ):  # the stopped worker checkpointed inside an epoch; the run went on from there
        assert result["resumed_from"]["batch"] > 0


def test_a_second_fit_of_the_same_job_resumes_instead_of_starting_over(  # type: ignore[no-untyped-def]
    baseline, artifacts_root: Path
) -> None:
    again = run(slow_spec(), "5001", artifacts_root)
    assert again["resumed"] and again["epochs_trained"] == []
    assert without_timing(again["history"]) == without_timing(baseline["history"])
    assert again["test_metrics"] == baseline["test_metrics"]


def test_early_stopping_with_checkpoints_and_artifacts_on_s3(  # type: ignore[no-untyped-def]
    ray_connected, s3_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    bucket = s3_server.create_bucket()
    # early stopping needs val_auc to gain 1.0: epoch 2 cannot, and ends the run (patience 1)
    spec = validate_spec(
        {
            "name": "s3",
            "workload": {"model": "mlp", "params": {"hidden": [32]}},
            "data": {"source": "builtin://breast_cancer"},
            "training": {
                "epochs": 10,
                "seed": 1,
                "optimizer": {"lr": 0.01},
                "keep_checkpoints": 1,
                "best_metric": "val_auc",
                "early_stopping": {"metric": "val_auc", "patience": 1, "min_delta": 1.0},
            },
            "resources": {"workers": 1},
        }
    )
    from dljobs.workloads.runner import run_model

    context = RunContext(
        job_id="5101", artifacts_url=f"s3://{bucket}/jobs/5101", s3_endpoint_url=s3_server.endpoint_url
    )
    summary = run_model(spec, context, 1)
    assert summary["stopped_early"] and summary["epochs_trained"] == [1, 2]
    best = f"epoch-{summary['best']['epoch']:06d}"
    assert summary["test_metrics"]["test_auc"] > 0.9  # the best checkpoint's weights, read back from S3
    client = s3_server.client()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="jobs/5101/")["Contents"]}
    run_dir = "jobs/5101/checkpoints/dljobs-job-5101/"
    kept = {k.removeprefix(run_dir).split("/")[0] for k in keys if k.startswith(run_dir + "epoch-")}
    assert kept == {best, "epoch-000002"}  # the best one (keep_checkpoints: 1) and the latest
    manifest = json.loads(client.get_object(Bucket=bucket, Key="jobs/5101/manifest.json")["Body"].read())
    assert {a["name"] for a in manifest["artifacts"]} == {
        "model.pt",
        "model.ts",
        "card.json",
        "metrics.jsonl",
    }
    for artifact in manifest["artifacts"]:
        assert artifact["uri"] == f"s3://{bucket}/jobs/5101/{artifact['name']}"
        assert f"jobs/5101/{artifact['name']}" in keys
    model = client.get_object(Bucket=bucket, Key=f"{run_dir}{best}/model.pt")["Body"].read()
    assert client.get_object(Bucket=bucket, Key="jobs/5101/model.pt")["Body"].read() == model


def test_streaming_data_trains_from_ray_data_shards(ray_connected, artifacts_root: Path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=600), rng.normal(size=600)
    table = artifacts_root / "stream" / "part-0.parquet"
    table.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"a": a, "b": b, "label": np.where(a + b > 0, "pos", "neg")}), table)
    # one worker of the head's two CPUs: Ray Data's read tasks run on the other
    spec = validate_spec(
        {
            "name": "stream",
            "workload": {"model": "mlp", "params": {"hidden": [16]}},
            "data": {"source": table.as_uri(), "streaming": True},
            "training": {"epochs": 3, "batch_size": 32, "seed": 5, "optimizer": {"lr": 0.01}},
        }
    )
    summary = run(spec, "5201", artifacts_root)
    assert [row["epoch"] for row in summary["history"]] == [1, 2, 3]
    assert summary["history"][-1]["val_accuracy"] > 0.9
    assert summary["test_metrics"]["test_auc"] > 0.9
