"""Where file data lives: `file://` paths and `s3://` objects, both read through a pyarrow filesystem.

S3 credentials come from the standard AWS environment variables; the endpoint of an S3-compatible
store (SeaweedFS, MinIO, ...) from `DLJOBS_S3_ENDPOINT_URL`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from dljobs.spec.runtime import ENV_S3_ENDPOINT_URL
from dljobs.workloads.errors import WorkloadError

SOURCE_FIELD = "data.source"
FORMAT_BY_EXTENSION = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npz": "npz",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Location:
    """A file or directory on a filesystem: `path` is what `filesystem` understands."""

    url: str
    filesystem: pafs.FileSystem
    path: str

    def info(self) -> pafs.FileInfo:
        return self.filesystem.get_file_info(self.path)

    def is_dir(self) -> bool:
        return self.info().type == pafs.FileType.Directory

    def read_bytes(self, path: str | None = None) -> bytes:
        with self.filesystem.open_input_stream(path or self.path) as stream:
            return stream.read()

    def list_files(self) -> list[pafs.FileInfo]:
        """Every file below this directory, sorted by path (hidden files left out)."""
        selector = pafs.FileSelector(self.path, recursive=True)
        infos = self.filesystem.get_file_info(selector)
        files = [i for i in infos if i.type == pafs.FileType.File and not _hidden(i.path, self.path)]
        return sorted(files, key=lambda i: i.path)

    def relative(self, path: str) -> str:
        return path[len(self.path.rstrip("/")) + 1 :]


def _hidden(path: str, root: str) -> bool:
    rest = path[len(root.rstrip("/")) + 1 :]
    return any(part.startswith((".", "_")) for part in rest.split("/"))


def s3_filesystem() -> pafs.S3FileSystem:
    """An S3 filesystem configured from the environment (endpoint, credentials, region)."""
    options: dict[str, object] = {
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    }
    endpoint = os.environ.get(ENV_S3_ENDPOINT_URL)
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["endpoint_override"] = parts.netloc
        options["scheme"] = parts.scheme
    access_key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if access_key and secret_key:
        options["access_key"] = access_key
        options["secret_key"] = secret_key
        if os.environ.get("AWS_SESSION_TOKEN"):
            options["session_token"] = os.environ["AWS_SESSION_TOKEN"]
    return pafs.S3FileSystem(**options)  # type: ignore[arg-type]


def resolve(url: str) -> Location:
    """The filesystem and path behind a `file://` or `s3://` URL; a missing source is the user's to fix."""
    if url.startswith("s3://"):
        location = Location(url, s3_filesystem(), url.removeprefix("s3://").rstrip("/"))
    elif url.startswith("file://"):
        path = os.path.abspath(os.path.expanduser(url.removeprefix("file://")))
        location = Location(url, pafs.LocalFileSystem(), path)
    else:
        raise WorkloadError(f"'{url}' is not a file:// or s3:// URL", field=SOURCE_FIELD)
    try:
        kind = location.info().type
    except OSError as exc:
        raise WorkloadError(f"cannot reach '{url}': {_first_line(exc)}", field=SOURCE_FIELD) from exc
    if kind == pafs.FileType.NotFound:
        raise WorkloadError(f"'{url}' does not exist", field=SOURCE_FIELD)
    return location


def detect_format(location: Location, declared: str) -> str:
    """`declared` unless it is "auto": then from the extension, or a directory of parquet files or images."""
    if declared != "auto":
        return declared
    if location.is_dir():
        files = location.list_files()
        if files and all(f.path.endswith((".parquet", ".pq")) for f in files):
            return "parquet"
        return "images"
    name = location.path.lower()
    for extension, fmt in sorted(FORMAT_BY_EXTENSION.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(extension):
            return fmt
    known = ", ".join(sorted(FORMAT_BY_EXTENSION))
    raise WorkloadError(
        f"cannot tell the format of '{location.url}' from its name (known: {known}, or a directory of "
        "images): set data.format",
        field="data.format",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
