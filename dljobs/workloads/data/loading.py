"""`load_data`: a job's `data:` section into three in-memory splits and the `DataInfo` describing them.

Every split is a `TensorDataset` of (inputs, targets):
- classification: targets are class indices (int64, shape (N,));
- regression: float32 targets of shape (N, target_dim);
- reconstruction (autoencoder) and generation (gan): the target is the input itself.
Inputs are float32 (tabular (N, F), images (N, C, H, W), sequences (N, T, C)) normalized with statistics
of the training split, or int64 token ids (N, L) padded with 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from dljobs.spec.data import DataSpec
from dljobs.spec.job import JobSpec
from dljobs.workloads.data.base import DataInfo, PreparedData
from dljobs.workloads.data.builtin import load_builtin
from dljobs.workloads.data.images import read_image_folder
from dljobs.workloads.data.raw import RawData, Targets, decide_task, encode_targets
from dljobs.workloads.data.sources import detect_format, resolve
from dljobs.workloads.data.splits import split_indices
from dljobs.workloads.data.stats import apply_normalization, feature_summary, fingerprint, fit_normalization
from dljobs.workloads.data.tables import read_csv_table, read_npz, read_parquet_table, table_to_raw
from dljobs.workloads.data.text import TOKENIZER, build_vocabulary, encode_texts, read_jsonl
from dljobs.workloads.errors import WorkloadError

UNLABELLED_MODELS = ("autoencoder", "gan")


def load_data(spec: JobSpec, *, seed: int) -> PreparedData:
    """Read, split (seeded; stratified for classes) and normalize the job's data, all in memory."""
    if spec.data is None:
        raise WorkloadError("the job has no data section: add one with a source", field="data")
    model = spec.workload.model
    raw = read_raw(spec.data, model=model)
    return prepare(raw, spec.data, model=model, seed=seed)


def read_raw(data: DataSpec, *, model: str | None) -> RawData:
    """The examples of a built-in set or a file source, before any split."""
    if data.builtin_name:
        return load_builtin(data.builtin_name, data)
    needs_labels = model not in UNLABELLED_MODELS
    location = resolve(data.source)
    fmt = detect_format(location, data.format)
    identity: dict[str, Any] = {"source": data.source, "format": fmt, "label_column": data.label_column}
    if fmt in ("csv", "parquet"):
        table = read_csv_table(location) if fmt == "csv" else read_parquet_table(location)
        if table.num_rows == 0:
            raise WorkloadError(f"'{data.source}' holds no rows", field="data.source")
        return table_to_raw(
            table,
            label_column=data.label_column,
            needs_labels=needs_labels,
            identity=identity,
            source=data.source,
        )
    if fmt == "npz":
        return read_npz(location, model=model, needs_labels=needs_labels, identity=identity)
    if fmt == "images":
        identity["image_size"] = data.image_size
        return read_image_folder(
            location, image_size=data.image_size, needs_labels=needs_labels, identity=identity
        )
    identity.update(text_column=data.text_column, max_length=data.max_length, vocab_size=data.vocab_size)
    return read_jsonl(
        location,
        text_column=data.text_column,
        label_column=data.label_column,
        needs_labels=needs_labels,
        identity=identity,
    )


def prepare(raw: RawData, data: DataSpec, *, model: str | None, seed: int) -> PreparedData:
    task = decide_task(model, raw.labels, raw.class_names is not None)
    targets = encode_targets(raw, task)
    content = raw.texts if raw.texts is not None else raw.inputs
    digest = fingerprint(raw.identity, [content, raw.labels])
    split = split_indices(
        len(raw),
        validation=data.validation_split,
        test=data.test_split,
        seed=seed,
        stratify=targets.stratify,
        shuffle=data.shuffle,
    )
    preprocessing: dict[str, Any] = {}
    vocab_size = None
    if raw.input_kind == "tokens":
        inputs, vocabulary = _token_ids(raw, data, split.train)
        vocab_size = len(vocabulary) if vocabulary else int(inputs.max()) + 1
        if vocabulary:
            preprocessing.update(vocabulary=vocabulary, tokenizer=TOKENIZER, max_length=inputs.shape[1])
        model_inputs = inputs
    else:
        inputs = raw.inputs
        assert inputs is not None
        if data.normalize:
            method = "minmax" if task == "generation" else "standard"
            preprocessing["normalization"] = fit_normalization(inputs[split.train], raw.input_kind, method)
        model_inputs = apply_normalization(inputs, raw.input_kind, preprocessing.get("normalization"))
    summary = feature_summary(inputs[split.train], raw.input_kind, feature_names=raw.feature_names, seed=seed)
    datasets = [_dataset(model_inputs, targets, indices) for indices in (split.train, split.val, split.test)]
    info = DataInfo(
        task=task,
        input_kind=raw.input_kind,
        input_shape=tuple(int(d) for d in model_inputs.shape[1:]),
        input_dtype="int64" if raw.input_kind == "tokens" else "float32",
        num_classes=len(targets.class_names) if task == "classification" and targets.class_names else None,
        class_names=targets.class_names if task == "classification" else None,
        vocab_size=vocab_size,
        target_dim=targets.target_dim,
        fingerprint=digest,
        num_train=len(split.train),
        num_val=len(split.val),
        num_test=len(split.test),
        feature_summary=summary,
        preprocessing=preprocessing,
    )
    return PreparedData(info=info, train=datasets[0], val=datasets[1], test=datasets[2])


def _token_ids(raw: RawData, data: DataSpec, train: np.ndarray) -> tuple[np.ndarray, list[str] | None]:
    if raw.texts is None:
        assert raw.inputs is not None
        return raw.inputs, raw.vocabulary
    vocabulary = build_vocabulary((raw.texts[i] for i in train), data.vocab_size)
    return encode_texts(raw.texts, vocabulary, data.max_length), vocabulary


def _dataset(inputs: np.ndarray, targets: Targets, indices: np.ndarray) -> TensorDataset | None:
    if len(indices) == 0:
        return None
    x = torch.from_numpy(np.ascontiguousarray(inputs[indices]))
    if targets.values is None:  # reconstruction and generation learn the inputs themselves
        return TensorDataset(x, x)
    return TensorDataset(x, torch.from_numpy(np.ascontiguousarray(targets.values[indices])))
