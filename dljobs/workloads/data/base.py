"""The contract between data sets, models and the training loop.

A loader turns a `DataSpec` into `PreparedData`: three splits and a `DataInfo` that tells the model
builder what it is building for (input shape and kind, task, classes) and the model card what was used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from torch.utils.data import Dataset

Task = Literal["classification", "regression", "reconstruction", "generation"]
InputKind = Literal["tabular", "image", "tokens", "sequence"]


@dataclass(frozen=True)
class DataInfo:
    task: Task
    input_kind: InputKind
    input_shape: tuple[int, ...]  # one example: (64,), (1, 8, 8), (3, 32, 32), (seq_len,), (seq_len, chans)
    input_dtype: str  # "float32" for features and images, "int64" for token ids
    num_classes: int | None = None  # classification only
    class_names: list[str] | None = None
    vocab_size: int | None = None  # tokens only
    target_dim: int | None = None  # regression outputs
    fingerprint: str = ""  # sha256 over the data's identity and content: the same data, the same value
    num_train: int = 0
    num_val: int = 0
    num_test: int = 0
    feature_summary: dict[str, Any] = field(default_factory=dict)  # per-feature statistics, for drift checks
    # What turns raw inputs into what the model saw: "normalization" ({"method", "per", "shift", "scale"}:
    # model input = (raw - shift) / scale), and for tokens "vocabulary" (id -> token) and "tokenizer".
    preprocessing: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedData:
    info: DataInfo
    train: Dataset[Any]
    val: Dataset[Any] | None
    test: Dataset[Any] | None
