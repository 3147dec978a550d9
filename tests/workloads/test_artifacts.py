"""Artifacts through the project's artifact store, locally and on a real S3 (SeaweedFS): every file in the
manifest with its size and sha256, custom outputs uploaded, the model card complete."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dljobs.spec.loading import validate_spec
from dljobs.storage import StorageError, open_store
from dljobs.workloads.artifacts import (
    ArtifactWriter,
    metrics_rows,
    model_card,
    package_versions,
    read_url,
    upload_directory,
)
from dljobs.workloads.data.base import DataInfo


@pytest.fixture(params=["file", "s3"])
def artifacts_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    if request.param == "file":
        return (tmp_path / "jobs" / "5").as_uri(), None
    server = request.getfixturevalue("s3_server")
    monkeypatch = request.getfixturevalue("monkeypatch")
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    return f"s3://{server.create_bucket()}/jobs/5", server.endpoint_url


def test_writer_lists_every_artifact_with_size_and_checksum(artifacts_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, endpoint = artifacts_url
    store = open_store(url, endpoint_url=endpoint)
    writer = ArtifactWriter(store)
    writer.write("model.pt", b"weights", "model")
    writer.write_json("card.json", {"a": 1}, "card")
    writer.write_jsonl(
        "metrics.jsonl", [{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.4}], "metrics"
    )
    outputs = tmp_path / "outputs"
    (outputs / "sub").mkdir(parents=True)
    (outputs / "weights.pt").write_bytes(b"\x00" * 1000)
    (outputs / "sub" / "notes.txt").write_text("hello")
    for artifact in upload_directory(store, outputs, "outputs"):
        writer.add(artifact)
    writer.write_manifest()

    manifest = json.loads(read_url(f"{url}/manifest.json", endpoint))
    names = [a["name"] for a in manifest["artifacts"]]
    assert names == ["model.pt", "card.json", "metrics.jsonl", "outputs/sub/notes.txt", "outputs/weights.pt"]
    kinds = {a["name"]: a["kind"] for a in manifest["artifacts"]}
    assert kinds["outputs/weights.pt"] == "model" and kinds["metrics.jsonl"] == "metrics"
    for artifact in manifest["artifacts"]:
        data = read_url(artifact["uri"], endpoint)
        assert len(data) == artifact["size"]
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
        assert artifact["uri"] == f"{url}/{artifact['name']}"
    rows = read_url(f"{url}/metrics.jsonl", endpoint).decode().splitlines()
    assert [json.loads(row)["epoch"] for row in rows] == [1, 2]


def test_a_refused_write_is_a_storage_error(s3_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-key")
    bucket = s3_server.create_bucket()
    writer = ArtifactWriter(open_store(f"s3://{bucket}/jobs/1", endpoint_url=s3_server.endpoint_url))
    with pytest.raises(StorageError):
        writer.write("model.pt", b"x", "model")
    assert writer.artifacts == []


def test_model_card_records_what_reproduces_and_serves_the_model() -> None:
    spec = validate_spec(
        {
            "name": "card",
            "workload": {"model": "mlp", "code": "bundle://" + "a" * 64},
            "data": {"source": "builtin://wine"},
            "training": {"seed": 5},
        }
    )
    info = DataInfo(
        task="classification",
        input_kind="tabular",
        input_shape=(13,),
        input_dtype="float32",
        num_classes=3,
        class_names=["a", "b", "c"],
        fingerprint="f" * 64,
        num_train=100,
        num_val=20,
        num_test=10,
    )
    summary = {
        "history": [{"epoch": 1, "step": 4, "val_loss": 0.7}],
        "final_metrics": {"val_loss": 0.7},
        "test_metrics": {"test_accuracy": 0.9},
        "best": {"metric": "val_loss", "value": 0.7, "epoch": 1},
        "global_step": 4,
        "test_confusion_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    }
    card = model_card(spec=spec, job_id="12", attempt=1, seed=5, summary=summary, info=info)
    assert card["spec"]["training"]["seed"] == 5 and card["seed"] == 5
    assert card["input"] == {"kind": "tabular", "shape": [13], "dtype": "float32"}
    assert card["output"]["class_names"] == ["a", "b", "c"]
    assert card["data"]["fingerprint"] == "f" * 64 and card["data"]["num_train"] == 100
    assert card["code_bundle"] == "a" * 64
    assert card["metrics"]["test"] == {"test_accuracy": 0.9}
    assert card["confusion_matrix"]["test"][0] == [1, 0, 0]
    assert set(card["versions"]) == {"python", "dljobs", "torch", "ray", "numpy"} == set(package_versions())
    assert metrics_rows(summary)[-1] == {"epoch": None, "step": 4, "test_accuracy": 0.9}
    json.dumps(card)  # serialisable as it stands
