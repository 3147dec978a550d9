"""One storage abstraction for file:// and s3:// (pyarrow filesystems), and the artifacts a job leaves.

Layout under a job's artifacts URL:

    model.pt        the trained weights (a state dict; for a GAN, generator and discriminator)
    model.ts        the TorchScript module for serving (normalization built in; for a GAN, the generator)
    card.json       the model card: resolved spec, metrics, input shape and dtype, classes, data fingerprint,
                    code bundle hash, package versions, seed
    metrics.jsonl   one line per epoch, then one line of test metrics
    outputs/...     files custom code wrote to `dljobs.workloads.api.artifact_dir()`
    manifest.json   every artifact above with its size and sha256 (written last)
    checkpoints/    Ray Train's run directory (checkpoints; not listed in the manifest)

Writes to S3 are retried on transient errors; a write that still fails raises ArtifactError, and the
runner fails the job: a job never reports success without its artifacts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs

ArtifactKind = Literal["model", "torchscript", "card", "metrics", "logs", "checkpoint", "other"]
MANIFEST = "manifest.json"
CHECKPOINTS_DIR = "checkpoints"
OUTPUTS_DIR = "outputs"
S3_ATTEMPTS = 5
_BACKOFF_S = 0.5
_CHUNK = 8 * 1024 * 1024
T = TypeVar("T")


class ArtifactError(Exception):
    """Artifacts could not be written or read (after retries)."""


def _s3_filesystem(endpoint_url: str | None) -> pafs.S3FileSystem:
    options: dict[str, Any] = {
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS),
        "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
        "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
        "session_token": os.environ.get("AWS_SESSION_TOKEN") or None,
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    }
    if not options["access_key"]:
        del options["access_key"], options["secret_key"], options["session_token"]
    if endpoint_url:
        # pyarrow ignores AWS_ENDPOINT_URL_S3: the endpoint must be given here, scheme apart.
        parsed = urlparse(endpoint_url if "://" in endpoint_url else f"http://{endpoint_url}")
        options.update(scheme=parsed.scheme or "http", endpoint_override=parsed.netloc)
    return pafs.S3FileSystem(**options)


def filesystem_for(url: str, endpoint_url: str | None = None) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a file:///abs/path or s3://bucket/key URL."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ArtifactError(f"'{url}': a file URL names a local path, file:///absolute/path")
        return pafs.LocalFileSystem(), unquote(parsed.path)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ArtifactError(f"'{url}' names no bucket")
        return _s3_filesystem(endpoint_url), f"{parsed.netloc}{parsed.path}".rstrip("/")
    raise ArtifactError(f"'{url}': storage URLs start with file:// or s3://")


def _transient(fs: pafs.FileSystem) -> bool:
    return isinstance(fs, pafs.S3FileSystem)


@dataclass(frozen=True)
class Artifact:
    name: str  # relative to the artifacts URL
    uri: str
    size: int
    sha256: str
    kind: ArtifactKind

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Storage:
    """A directory (local or on S3) addressed by a URL; names are relative paths under it."""

    def __init__(self, url: str, *, endpoint_url: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.endpoint_url = endpoint_url
        self.fs, self.root = filesystem_for(self.url, endpoint_url)

    def path(self, *names: str) -> str:
        return "/".join([self.root, *(n.strip("/") for n in names if n)])

    def url_of(self, *names: str) -> str:
        return "/".join([self.url, *(n.strip("/") for n in names if n)])

    def _retry(self, action: Callable[[], T], what: str) -> T:
        attempts = S3_ATTEMPTS if _transient(self.fs) else 1
        for attempt in range(1, attempts + 1):
            try:
                return action()
            except OSError as exc:
                if attempt == attempts:
                    raise ArtifactError(f"cannot {what}: {exc}") from exc
                time.sleep(_BACKOFF_S * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _ensure_parent(self, path: str) -> None:
        if isinstance(self.fs, pafs.LocalFileSystem):
            self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)

    def write_bytes(self, name: str, data: bytes) -> None:
        path = self.path(name)

        def write() -> None:
            self._ensure_parent(path)
            with self.fs.open_output_stream(path) as stream:
                stream.write(data)

        self._retry(write, f"write {self.url_of(name)}")

    def upload_file(self, name: str, local_path: str | Path) -> None:
        path = self.path(name)

        def upload() -> None:
            self._ensure_parent(path)
            with open(local_path, "rb") as source, self.fs.open_output_stream(path) as stream:
                while chunk := source.read(_CHUNK):
                    stream.write(chunk)

        self._retry(upload, f"upload {self.url_of(name)}")

    def read_bytes(self, name: str = "") -> bytes:
        path = self.path(name) if name else self.root

        def read() -> bytes:
            with self.fs.open_input_stream(path) as stream:
                return stream.read()

        return self._retry(read, f"read {self.url_of(name) if name else self.url}")

    def exists(self, name: str) -> bool:
        return self.fs.get_file_info(self.path(name)).type != pafs.FileType.NotFound


def read_url(url: str, endpoint_url: str | None = None) -> bytes:
    """The bytes of one object or file, by URL."""
    return Storage(url, endpoint_url=endpoint_url).read_bytes()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactWriter:
    """Writes a job's artifacts and keeps the list the manifest and the controller receive."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.artifacts: list[Artifact] = []

    def write(self, name: str, data: bytes, kind: ArtifactKind) -> Artifact:
        self.storage.write_bytes(name, data)
        return self._record(Artifact(name, self.storage.url_of(name), len(data), sha256_of(data), kind))

    def write_json(self, name: str, document: Any, kind: ArtifactKind) -> Artifact:
        return self.write(name, json.dumps(document, indent=2, sort_keys=True).encode(), kind)

    def write_jsonl(self, name: str, rows: Iterable[dict[str, Any]], kind: ArtifactKind) -> Artifact:
        return self.write(
            name, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode(), kind
        )

    def write_torch(self, name: str, value: Any, kind: ArtifactKind) -> Artifact:
        import torch

        buffer = io.BytesIO()
        torch.save(value, buffer)
        return self.write(name, buffer.getvalue(), kind)

    def add(self, artifact: Artifact) -> Artifact:
        """Record an artifact written elsewhere (e.g. by a worker) for the manifest."""
        return self._record(artifact)

    def _record(self, artifact: Artifact) -> Artifact:
        self.artifacts = [a for a in self.artifacts if a.name != artifact.name] + [artifact]
        return artifact

    def write_manifest(self) -> Artifact:
        """manifest.json, listing every artifact written so far; call it last."""
        document = {"artifacts": [a.to_dict() for a in self.artifacts if a.name != MANIFEST]}
        return self.write_json(MANIFEST, document, "other")


def upload_directory(storage: Storage, local_dir: str | Path, prefix: str) -> list[Artifact]:
    """Upload every file under `local_dir` to `prefix/` and describe them (kind from the file name)."""
    uploaded: list[Artifact] = []
    base = Path(local_dir)
    for file in sorted(p for p in base.rglob("*") if p.is_file()):
        name = f"{prefix}/{file.relative_to(base).as_posix()}"
        storage.upload_file(name, file)
        uploaded.append(
            Artifact(name, storage.url_of(name), file.stat().st_size, _file_sha256(file), _kind_of(file.name))
        )
    return uploaded


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _kind_of(filename: str) -> ArtifactKind:
    if filename.endswith((".pt", ".pth")):
        return "model"
    if filename.endswith(".ts"):
        return "torchscript"
    if filename.endswith(".jsonl"):
        return "metrics"
    if filename.endswith(".log"):
        return "logs"
    return "other"


# --- the job's artifacts ------------------------------------------------------------------------------------


def package_versions() -> dict[str, str]:
    import platform
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("dljobs", "torch", "ray", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def model_card(
    *,
    spec: Any,
    job_id: str,
    attempt: int,
    seed: int,
    summary: dict[str, Any],
    info: Any | None = None,
) -> dict[str, Any]:
    """card.json: what was trained, on what, how well, with which versions: enough to reproduce and serve."""
    workload = spec.workload
    code = workload.code or ""
    card: dict[str, Any] = {
        "format": 1,
        "job_id": job_id,
        "attempt": attempt,
        "name": spec.name,
        "project": spec.project,
        "created_at": time.time(),
        "workload": {
            "kind": workload.kind,
            "model": workload.model,
            "params": workload.params,
            "entrypoint": workload.entrypoint,
            "init_from": workload.init_from,
            "freeze": workload.freeze,
        },
        "spec": spec.model_dump(mode="json"),
        "seed": seed,
        "code_bundle": code.removeprefix("bundle://") if code.startswith("bundle://") else None,
        "versions": package_versions(),
        "metrics": {
            "final": summary.get("final_metrics", {}),
            "test": summary.get("test_metrics", {}),
            "best": summary.get("best"),
        },
        "confusion_matrix": {
            "validation": summary.get("val_confusion_matrix"),
            "test": summary.get("test_confusion_matrix"),
        },
        "stopped_early": summary.get("stopped_early", False),
        "epochs": len(summary.get("history", [])),
    }
    if info is not None:
        card["task"] = info.task
        card["input"] = {"kind": info.input_kind, "shape": list(info.input_shape), "dtype": info.input_dtype}
        card["output"] = {
            "num_classes": info.num_classes,
            "class_names": info.class_names,
            "target_dim": info.target_dim,
            "vocab_size": info.vocab_size,
        }
        card["data"] = {
            "source": spec.data.source if spec.data else None,
            "fingerprint": info.fingerprint,
            "num_train": info.num_train,
            "num_val": info.num_val,
            "num_test": info.num_test,
            "feature_summary": info.feature_summary,
        }
        card["preprocessing"] = info.preprocessing
    return card


def metrics_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """metrics.jsonl: the history, one row per report, then one row of test metrics."""
    rows = [dict(row) for row in summary.get("history", [])]
    if summary.get("test_metrics"):
        rows.append({"epoch": None, "step": summary.get("global_step"), **summary["test_metrics"]})
    return rows


def write_model_artifacts(
    writer: ArtifactWriter,
    *,
    spec: Any,
    info: Any,
    model_bytes: bytes,
    card: dict[str, Any],
    summary: dict[str, Any],
) -> None:
    """model.pt (as the checkpoint holds it), model.ts (TorchScript), card.json, metrics.jsonl."""
    import torch

    from dljobs.workloads.models import build_model, export_torchscript

    writer.write("model.pt", model_bytes, "model")
    model = build_model(spec.workload, info)
    model.load_state_dict(torch.load(io.BytesIO(model_bytes), map_location="cpu", weights_only=True))
    buffer = io.BytesIO()
    torch.jit.save(export_torchscript(model, info), buffer)
    writer.write("model.ts", buffer.getvalue(), "torchscript")
    writer.write_json("card.json", card, "card")
    writer.write_jsonl("metrics.jsonl", metrics_rows(summary), "metrics")


def write_custom_artifacts(writer: ArtifactWriter, *, card: dict[str, Any], summary: dict[str, Any]) -> None:
    """card.json and metrics.jsonl of custom code; its own files (outputs/) are already uploaded."""
    for artifact in summary.get("artifacts", []):
        writer.add(Artifact(**artifact))
    writer.write_json("card.json", card, "card")
    writer.write_jsonl("metrics.jsonl", metrics_rows(summary), "metrics")
