"""A store on S3 or an S3-compatible server, through boto3 (imported when first opened)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from dljobs.storage.base import KeyNotFound, ObjectInfo, StorageError, check_key, join_url

T = TypeVar("T")


class S3Store:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        retry_seconds: float = 60.0,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self.retry_seconds = retry_seconds
        self.url = join_url(f"s3://{bucket}", self.prefix)
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            # a session per store: the default session caches credentials and is not thread-safe
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                config=Config(
                    retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60
                ),
            )
        return self._client

    def _key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, action: Callable[[], T], key: str) -> T:
        """Run an S3 call, retrying connection failures (a restarting server) for up to retry_seconds."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        deadline = time.monotonic() + self.retry_seconds
        delay = 0.2
        while True:
            try:
                return action()
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("404", "NoSuchKey", "NotFound"):
                    raise KeyNotFound(key) from None
                if (
                    code in ("500", "502", "503", "InternalError", "SlowDown", "ServiceUnavailable")
                    and time.monotonic() < deadline
                ):
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                raise StorageError(f"S3 {code or 'error'} on {self.url_for(key)}") from None
            except NoCredentialsError:
                raise StorageError(
                    "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                    "or give the pod an IAM role"
                ) from None
            except (EndpointConnectionError, BotoCoreError, ConnectionError) as exc:
                if time.monotonic() >= deadline:
                    raise StorageError(f"S3 unreachable at {self.endpoint_url or 'AWS'}: {exc}") from None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data), key)

    def put_file(self, key: str, path: Path) -> None:
        self._call(lambda: self.client.upload_file(str(path), self.bucket, self._key(key)), key)

    def get_bytes(self, key: str) -> bytes:
        response = self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(key)), key)
        return response["Body"].read()

    def download(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._call(lambda: self.client.download_file(self.bucket, self._key(key), str(path)), key)

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        response = self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(key)), key)
        yield from response["Body"].iter_chunks(chunk_size)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except KeyNotFound:
            return False

    def size(self, key: str) -> int:
        head = self._call(lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(key)), key)
        return int(head["ContentLength"])

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        full = self._key(prefix) + "/" if prefix else (self.prefix + "/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        out: list[ObjectInfo] = []
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=full)), prefix or "/")
        for page in pages:
            for item in page.get("Contents", []):
                out.append(ObjectInfo(item["Key"][strip:], int(item["Size"])))
        return sorted(out, key=lambda o: o.key)

    def delete_prefix(self, prefix: str) -> None:
        objects = self.list(prefix)
        for start in range(0, len(objects), 1000):
            batch = [{"Key": self._key(o.key)} for o in objects[start : start + 1000]]
            self._call(
                lambda b=batch: self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": b}), prefix
            )

    def child(self, prefix: str) -> S3Store:
        sub = check_key(prefix)
        return S3Store(
            self.bucket,
            f"{self.prefix}/{sub}" if self.prefix else sub,
            endpoint_url=self.endpoint_url,
            region=self.region,
            retry_seconds=self.retry_seconds,
            client=self._client,
        )
