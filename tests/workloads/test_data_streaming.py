"""Streaming through Ray Data on a real Ray head: splits, batches, the same preprocessing as in memory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from dljobs.workloads.data import load_data
from dljobs.workloads.data.stats import apply_normalization
from dljobs.workloads.data.streaming import (
    KeepSplit,
    StreamingCollate,
    build_streaming_data,
    iter_batches,
    row_fractions,
)
from dljobs.workloads.errors import WorkloadError
from tests.workloads import job_spec

pytestmark = pytest.mark.ray

ROWS = 300


@pytest.fixture(scope="module")
def ray_client(ray_head) -> Iterator[None]:
    """This process connected to the session's Ray head (token auth); disconnected after the module.

    Ray reads the auth mode when it is first imported (here: at collection, before the head and its
    token exist), so its auth state is reloaded once the variables are set.
    """
    import ray
    import ray.data
    from ray._private.authentication_test_utils import reset_auth_token_state

    previous = {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": ray_head.token})
    reset_auth_token_state()
    ray.init(address=ray_head.gcs_address, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_auth_token_state()


def _columns(rows: int = ROWS) -> dict[str, list]:
    rng = np.random.default_rng(0)
    a = rng.normal(size=rows)
    return {
        "row_id": list(range(rows)),
        "a": a.tolist(),
        "b": (rng.normal(size=rows) * 3 + 1).tolist(),
        "label": [["low", "mid", "high"][int(v > -0.4) + int(v > 0.4)] for v in a],
    }


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stream") / "table"
    root.mkdir()
    table = pa.table(_columns())
    for part, start in enumerate(range(0, ROWS, 100)):
        pq.write_table(table.slice(start, 100), root / f"part-{part}.parquet")
    return root


PARQUET_SPLITS = {"validation_split": 0.2, "test_split": 0.1}


@pytest.fixture(scope="module")
def parquet_stream(ray_client, parquet_dir):
    return build_streaming_data(job_spec(f"file://{parquet_dir}", streaming=True, **PARQUET_SPLITS), seed=11)


def _expected_rows(split: str) -> list[int]:
    """The row ids a split holds, from the split rule applied to the whole table here, without Ray."""
    table = {name: np.asarray(values) for name, values in _columns().items()}
    keep = KeepSplit(split, [], 11, PARQUET_SPLITS["validation_split"], PARQUET_SPLITS["test_split"])
    return sorted(keep(table)["row_id"].tolist())


def _all_batches(dataset, info, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*iter_batches(dataset, info, batch_size=batch_size), strict=True)
    return torch.cat(xs), torch.cat(ys)


def _row_ids(x: torch.Tensor, info) -> list[int]:
    normalization = info.preprocessing["normalization"]
    raw = x[:, 0] * normalization["scale"][0] + normalization["shift"][0]  # row_id is the first feature
    return sorted(round(float(v)) for v in raw)


def test_parquet_streams_in_disjoint_deterministic_splits(parquet_stream, parquet_dir):
    info = parquet_stream.info
    assert (info.task, info.input_kind, info.input_shape) == ("classification", "tabular", (3,))
    assert info.class_names == ["high", "low", "mid"] and info.preprocessing["stream"]["feature_columns"] == [
        "row_id",
        "a",
        "b",
    ]
    assert (info.num_train, info.num_val, info.num_test) == (210, 60, 30)  # estimates from the row count
    ids = {}
    for name, dataset in parquet_stream.datasets().items():
        x, y = _all_batches(dataset, info)
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1:] == (3,)
        ids[name] = _row_ids(x, info)
        assert ids[name] == _expected_rows(name)
    assert sorted(ids["train"] + ids["validation"] + ids["test"]) == list(range(ROWS))
    assert 0.5 * 60 < len(ids["validation"]) < 1.5 * 60 and 0.4 * 30 < len(ids["test"]) < 1.6 * 30
    # The statistics come from the same first rows on every run.
    again = build_streaming_data(job_spec(f"file://{parquet_dir}", streaming=True, **PARQUET_SPLITS), seed=11)
    assert again.info == info


def test_streamed_batches_are_preprocessed_like_the_in_memory_data(ray_client, tmp_path):
    columns = _columns(120)
    path = tmp_path / "table.csv"
    names = list(columns)
    path.write_text(
        "\n".join([",".join(names)] + [",".join(str(columns[n][i]) for n in names) for i in range(120)])
        + "\n"
    )
    stream = build_streaming_data(job_spec(f"file://{path}", streaming=True), seed=0)
    memory = load_data(job_spec(f"file://{path}"), seed=0)
    assert stream.info.class_names == memory.info.class_names
    batch = {name: np.asarray(values) for name, values in columns.items()}
    x, y = StreamingCollate(stream.info)(batch)
    raw = np.stack([batch["row_id"], batch["a"], batch["b"]], axis=1).astype(np.float32)
    assert torch.allclose(
        x, torch.from_numpy(apply_normalization(raw, "tabular", stream.info.preprocessing["normalization"]))
    )
    names = memory.info.class_names
    assert y.tolist() == [names.index(label) for label in columns["label"]]


def test_regression_targets_stream_as_columns(ray_client, tmp_path):
    rng = np.random.default_rng(2)
    pq.write_table(pa.table({"x": rng.normal(size=50), "price": rng.normal(size=50)}), tmp_path / "p.parquet")
    stream = build_streaming_data(
        job_spec(f"file://{tmp_path / 'p.parquet'}", streaming=True, label_column="price"), seed=0
    )
    assert stream.info.task == "regression" and stream.info.target_dim == 1
    x, y = _all_batches(stream.train, stream.info)
    assert y.dtype == torch.float32 and y.shape == (len(x), 1)


def test_image_folders_stream_as_image_batches(ray_client, tmp_path):
    rng = np.random.default_rng(3)
    for name in ("cat", "dog"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(12):
            pixels = (rng.uniform(size=(10, 10, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pets" / name / f"{i}.png")
    spec = job_spec(f"file://{tmp_path / 'pets'}", "cnn", streaming=True, image_size=6, test_split=0.0)
    stream = build_streaming_data(spec, seed=0)
    assert stream.info.input_shape == (3, 6, 6) and stream.info.class_names == ["cat", "dog"]
    assert stream.test is None
    counts = []
    labels = []
    for dataset in (stream.train, stream.validation):
        x, y = _all_batches(dataset, stream.info, batch_size=8)
        assert x.shape[1:] == (3, 6, 6)
        counts.append(len(x))
        labels += y.tolist()
    assert sum(counts) == 24 and sorted(set(labels)) == [0, 1]


def test_streaming_refuses_what_it_cannot_stream(ray_client, tmp_path, parquet_dir):
    (tmp_path / "t.jsonl").write_text('{"text": "a", "label": 1}\n')
    for spec, field in [
        (job_spec("builtin://digits", streaming=True), "data.streaming"),
        (job_spec(f"file://{tmp_path / 't.jsonl'}", "lstm", streaming=True), "data.streaming"),
        (job_spec(f"file://{parquet_dir}", streaming=True, label_column="target"), "data.label_column"),
        (job_spec(f"file://{tmp_path / 'missing'}", streaming=True), "data.source"),
    ]:
        with pytest.raises(WorkloadError) as caught:
            build_streaming_data(spec, seed=0)
        assert caught.value.field == field


def test_row_fractions_depend_on_content_and_seed_only():
    batch = {"a": np.array([1.0, 2.0, 1.0]), "name": np.array(["x", "y", "x"])}
    first = row_fractions(batch, [], seed=1)
    assert first[0] == first[2] and first[0] != first[1]  # identical rows land together
    assert ((first >= 0) & (first < 1)).all()
    assert not np.array_equal(first, row_fractions(batch, [], seed=2))
    spread = row_fractions({"a": np.arange(10000.0)}, [], seed=0)
    assert abs(float((spread < 0.2).mean()) - 0.2) < 0.02


def test_a_train_worker_reads_its_shard(parquet_stream, tmp_path):
    """The datasets and info go through a real TorchTrainer; each worker batches its own shard."""
    import ray.train
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from dljobs.workloads.data.streaming import shard_batches

    stream = parquet_stream

    def loop(config):
        rows = 0
        for x, y in shard_batches("train", config["info"], batch_size=32):
            assert x.shape[1:] == (3,) and y.dtype == torch.int64
            rows += len(x)
        with tempfile.TemporaryDirectory() as folder:  # Train v2 keeps metrics that come with a checkpoint
            Path(folder, "rows").write_text(str(rows))
            ray.train.report({"rows": rows}, checkpoint=ray.train.Checkpoint.from_directory(folder))

    trainer = TorchTrainer(
        loop,
        train_loop_config={"info": stream.info},
        scaling_config=ScalingConfig(num_workers=1),
        datasets={"train": stream.train},
        run_config=RunConfig(name="stream", storage_path=str(tmp_path)),
    )
    result = trainer.fit()
    assert result.metrics["rows"] == len(_expected_rows("train"))
