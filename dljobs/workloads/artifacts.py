"""The artifacts a job leaves, written through the project's artifact store (`dljobs.storage`).

Layout under a job's artifacts URL (file:// or s3://):

    model.pt        the trained weights (a state dict; for a GAN, generator and discriminator)
    model.ts        the TorchScript module for serving (normalization built in; for a GAN, the generator)
    card.json       the model card: resolved spec, metrics, input shape and dtype, classes, data fingerprint,
                    code bundle hash, package versions, seed
    metrics.jsonl   one line per epoch (per report for custom code), then one line of test metrics
    outputs/...     files custom code wrote to `dljobs.workloads.api.artifact_dir()`
    manifest.json   every artifact above with its size and sha256 (written last)
    checkpoints/    Ray Train's run directory (checkpoints; not listed in the manifest)

The store retries transient S3 failures; a write that still fails raises StorageError and the runner fails
the job: a job never reports success without its artifacts.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dljobs.spec.api import ArtifactKind
from dljobs.storage import ArtifactStore, open_store

MANIFEST = "manifest.json"
CHECKPOINTS_DIR = "checkpoints"
OUTPUTS_DIR = "outputs"
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Artifact:
    name: str  # relative to the artifacts URL
    uri: str
    size: int
    sha256: str
    kind: ArtifactKind

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_url(url: str, endpoint_url: str | None = None) -> bytes:
    """The bytes of one object or file, by URL (file:///dir/model.pt, s3://bucket/jobs/7/model.pt)."""
    parent, _, name = url.rstrip("/").rpartition("/")
    return open_store(parent, endpoint_url=endpoint_url).get_bytes(name)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactWriter:
    """Writes a job's artifacts and keeps the list the manifest and the controller receive."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.artifacts: list[Artifact] = []

    def write(self, name: str, data: bytes, kind: ArtifactKind) -> Artifact:
        self.store.put_bytes(name, data)
        return self._record(Artifact(name, self.store.url_for(name), len(data), sha256_of(data), kind))

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


def record_stored(writer: ArtifactWriter, prefix: str, kind: ArtifactKind) -> None:
    """Add files workers already put under `prefix/` (TensorBoard events, say) to the manifest."""
    for item in writer.store.list(prefix):
        data = writer.store.get_bytes(item.key)
        writer.add(Artifact(item.key, writer.store.url_for(item.key), item.size, sha256_of(data), kind))


def upload_directory(store: ArtifactStore, local_dir: str | Path, prefix: str) -> list[Artifact]:
    """Upload every file under `local_dir` to `prefix/` and describe them (kind from the file name)."""
    uploaded: list[Artifact] = []
    base = Path(local_dir)
    for file in sorted(p for p in base.rglob("*") if p.is_file()):
        name = f"{prefix}/{file.relative_to(base).as_posix()}"
        store.put_file(name, file)
        uploaded.append(
            Artifact(name, store.url_for(name), file.stat().st_size, _file_sha256(file), _kind_of(file.name))
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
    with warnings.catch_warnings():  # TorchScript is what serving loads, deprecated or not
        warnings.filterwarnings("ignore", message=".*torch.jit.save.*", category=DeprecationWarning)
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
