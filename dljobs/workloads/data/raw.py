"""What every loader returns before splitting: inputs, raw labels, and what the data is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dljobs.workloads.data.base import InputKind, Task
from dljobs.workloads.errors import WorkloadError

LABEL_FIELD = "data.label_column"


@dataclass
class RawData:
    """Examples as read: numeric `inputs` (N, ...), or `texts` to tokenize once the split is known.

    `labels` are raw (strings, integers or floats) unless `class_names` is set, in which case they are
    already class indices. `identity` names the data for the fingerprint (source and options).
    """

    input_kind: InputKind
    identity: dict[str, Any]
    inputs: np.ndarray | None = None
    texts: list[str] | None = None
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    vocabulary: list[str] | None = None  # token ids already assigned (generated token sets)

    def __post_init__(self) -> None:
        count = len(self.texts) if self.texts is not None else 0 if self.inputs is None else len(self.inputs)
        if count == 0:
            raise WorkloadError("the data set is empty: no examples were found", field="data.source")
        if self.labels is not None and len(self.labels) != count:
            raise WorkloadError(f"{count} examples but {len(self.labels)} labels", field="data.source")

    def __len__(self) -> int:
        return len(self.texts) if self.texts is not None else len(self.inputs)  # type: ignore[arg-type]


@dataclass
class Targets:
    """Labels as the model learns them: class indices (int64) or regression values (float32, (N, D))."""

    task: Task
    values: np.ndarray | None
    class_names: list[str] | None = None
    target_dim: int | None = None
    stratify: np.ndarray | None = field(default=None, repr=False)


def decide_task(model: str | None, labels: np.ndarray | None, has_class_names: bool) -> Task:
    """autoencoder -> reconstruction, gan -> generation; otherwise by the labels' type."""
    if model == "autoencoder":
        return "reconstruction"
    if model == "gan":
        return "generation"
    if labels is None:
        who = f"model '{model}'" if model else "a classifier or regressor"
        raise WorkloadError(f"the data has no labels, which {who} needs to learn from", field=LABEL_FIELD)
    if has_class_names or labels.dtype.kind in "iubUSO":
        return "classification"
    if labels.dtype.kind == "f":
        return "regression"
    raise WorkloadError(f"labels of type {labels.dtype} are neither classes nor numbers", field=LABEL_FIELD)


def encode_targets(raw: RawData, task: Task) -> Targets:
    """Class indices with sorted class names, or float regression targets of shape (N, target_dim)."""
    labels = raw.labels
    if task in ("reconstruction", "generation"):
        stratify = labels if raw.class_names is not None else None
        return Targets(task=task, values=None, class_names=raw.class_names, stratify=stratify)
    assert labels is not None
    if task == "regression":
        values = labels.astype(np.float32).reshape(len(labels), -1)
        if not np.isfinite(values).all():
            raise WorkloadError("the labels contain missing or infinite values", field=LABEL_FIELD)
        return Targets(task=task, values=values, target_dim=values.shape[1])
    if raw.class_names is not None:
        values = labels.astype(np.int64)
        names = raw.class_names
    else:
        values, names = _class_indices(labels)
    if len(names) < 2:
        raise WorkloadError(
            f"the labels hold a single class ('{names[0]}'): classification needs at least two",
            field=LABEL_FIELD,
        )
    return Targets(task=task, values=values, class_names=names, stratify=values)


def _class_indices(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    if labels.dtype.kind == "O":
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in labels):
            raise WorkloadError("some labels are missing", field=LABEL_FIELD)
        labels = labels.astype(str)
    if labels.ndim != 1:
        raise WorkloadError(
            f"class labels must be one per example, got shape {labels.shape}", field=LABEL_FIELD
        )
    uniques, indices = np.unique(labels, return_inverse=True)
    names = [str(u.item() if hasattr(u, "item") else u) for u in uniques]
    return indices.astype(np.int64), names
