"""Loaders reading from a real S3 server (SeaweedFS, the session fixture `s3_server`)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dljobs.workloads.data import load_data
from dljobs.workloads.errors import WorkloadError
from tests.workloads import job_spec


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The server's endpoint and credentials in the environment, as a Ray job gets them."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


def _csv_bytes(rows: int = 40) -> bytes:
    rng = np.random.default_rng(0)
    lines = ["a,b,label"] + [
        f"{rng.normal():.4f},{rng.normal():.4f},{'yes' if i % 2 else 'no'}" for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_csv_and_parquet_from_s3(s3_env):
    bucket = s3_env.create_bucket()
    client = s3_env.client()
    client.put_object(Bucket=bucket, Key="sets/table.csv", Body=_csv_bytes())
    sink = io.BytesIO()
    pq.write_table(pa.table({"a": [0.1 * i for i in range(30)], "label": [i % 3 for i in range(30)]}), sink)
    client.put_object(Bucket=bucket, Key="sets/parts/part-0.parquet", Body=sink.getvalue())

    csv = load_data(job_spec(f"s3://{bucket}/sets/table.csv"), seed=0)
    assert (
        csv.info.class_names == ["no", "yes"]
        and csv.info.num_train + csv.info.num_val + csv.info.num_test == 40
    )
    parquet = load_data(job_spec(f"s3://{bucket}/sets/parts"), seed=0)
    assert parquet.info.input_shape == (1,) and parquet.info.num_classes == 3


def test_image_folder_from_s3(s3_env):
    bucket = s3_env.create_bucket()
    client = s3_env.client()
    rng = np.random.default_rng(1)
    for name in ("cat", "dog"):
        for i in range(4):
            buffer = io.BytesIO()
            Image.fromarray((rng.uniform(size=(8, 8, 3)) * 255).astype(np.uint8)).save(buffer, format="PNG")
            client.put_object(Bucket=bucket, Key=f"pets/{name}/{i}.png", Body=buffer.getvalue())
    data = load_data(job_spec(f"s3://{bucket}/pets", "cnn"), seed=0)
    assert data.info.input_shape == (3, 8, 8) and data.info.class_names == ["cat", "dog"]


def test_a_missing_s3_object_names_the_source(s3_env):
    bucket = s3_env.create_bucket()
    with pytest.raises(WorkloadError) as caught:
        load_data(job_spec(f"s3://{bucket}/nothing/here.csv"), seed=0)
    assert caught.value.field == "data.source" and "does not exist" in str(caught.value)
