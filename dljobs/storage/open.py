"""Open a store from its URL."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from dljobs.spec.runtime import ENV_S3_ENDPOINT_URL
from dljobs.storage.base import ArtifactStore


def open_store(
    url: str, *, endpoint_url: str | None = None, region: str | None = None, retry_seconds: float = 60.0
) -> ArtifactStore:
    """`file:///dir` or a plain path: a local directory; `s3://bucket/prefix`: S3.

    The S3 endpoint comes from the argument, else DLJOBS_S3_ENDPOINT_URL; credentials from the usual AWS
    sources (environment, shared files, an IAM role).
    """
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        from dljobs.storage.local import LocalStore

        path = Path(unquote(parsed.path) if parsed.scheme else url).expanduser()
        return LocalStore(path)
    if parsed.scheme == "s3":
        from dljobs.storage.s3 import S3Store

        if not parsed.netloc:
            raise ValueError(f"'{url}' names no bucket")
        return S3Store(
            parsed.netloc,
            parsed.path.strip("/"),
            endpoint_url=endpoint_url or os.environ.get(ENV_S3_ENDPOINT_URL) or None,
            region=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            retry_seconds=retry_seconds,
        )
    raise ValueError(f"unsupported storage URL '{url}': use file:// or s3://")
