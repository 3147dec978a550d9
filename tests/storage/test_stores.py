"""The same behaviour from the local-directory store and the S3 store (on a real SeaweedFS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dljobs.storage import ObjectInfo, StorageError, check_key, open_store
from dljobs.storage.base import KeyNotFound


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "file":
        return open_store(tmp_path.as_uri())
    server = request.getfixturevalue("s3_server")
    bucket = server.create_bucket()
    from dljobs.storage.s3 import S3Store

    return S3Store(
        bucket, "prefix", endpoint_url=server.endpoint_url, region=server.region, client=server.client()
    )


def test_round_trip_list_and_delete(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store.put_bytes("jobs/1/model.pt", b"weights")
    source = tmp_path / "card.json"
    source.write_text("{}")
    store.put_file("jobs/1/card.json", source)
    store.put_bytes("jobs/2/model.pt", b"other")

    assert store.get_bytes("jobs/1/model.pt") == b"weights"
    assert store.exists("jobs/1/card.json") and not store.exists("jobs/1/missing")
    assert store.size("jobs/1/model.pt") == 7
    assert store.list("jobs/1") == [ObjectInfo("jobs/1/card.json", 2), ObjectInfo("jobs/1/model.pt", 7)]
    assert b"".join(store.iter_chunks("jobs/2/model.pt", chunk_size=2)) == b"other"
    target = tmp_path / "out" / "model.pt"
    store.download("jobs/1/model.pt", target)
    assert target.read_bytes() == b"weights"

    child = store.child("jobs/1")
    assert child.get_bytes("model.pt") == b"weights"
    assert child.url_for("model.pt") == store.url_for("jobs/1/model.pt")

    store.delete_prefix("jobs/1")
    assert store.list("jobs/1") == []
    assert store.exists("jobs/2/model.pt")
    with pytest.raises(KeyNotFound):
        store.get_bytes("jobs/1/model.pt")


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "/abs", "a/../../b", "a\\b", "a/%2e%2e/b", "%252e%252e/x", "a/\x00b", "", "./a"]
)
def test_keys_cannot_escape(store, key: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="invalid artifact path"):
        store.put_bytes(key, b"x")


def test_check_key_normalises_plain_paths() -> None:
    assert check_key("jobs//1/model.pt") == "jobs/1/model.pt"


def test_s3_store_waits_for_a_restarting_server(s3_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Connection failures are retried until the server is back (within retry_seconds)."""
    import threading

    from dljobs.storage.s3 import S3Store

    bucket = s3_server.create_bucket()
    store = S3Store(
        bucket,
        endpoint_url=s3_server.endpoint_url,
        region=s3_server.region,
        retry_seconds=120,
        client=s3_server.client(),
    )
    s3_server.stop()
    restart = threading.Thread(target=s3_server.start)
    restart.start()
    try:
        store.put_bytes("after-restart", b"kept")
    finally:
        restart.join()
    assert store.get_bytes("after-restart") == b"kept"


def test_unreachable_s3_is_a_storage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from dljobs.controller.ray_head import free_port
    from dljobs.storage.s3 import S3Store

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    store = S3Store(
        "bucket", endpoint_url=f"http://127.0.0.1:{free_port()}", region="us-east-1", retry_seconds=1
    )
    with pytest.raises(StorageError, match="unreachable"):
        store.put_bytes("x", b"y")


def test_missing_credentials_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dljobs.controller.ray_head import free_port
    from dljobs.storage.s3 import S3Store

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = S3Store(
        "bucket", endpoint_url=f"http://127.0.0.1:{free_port()}", region="us-east-1", retry_seconds=1
    )
    with pytest.raises(StorageError, match="no S3 credentials"):
        store.put_bytes("x", b"y")
