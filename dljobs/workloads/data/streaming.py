"""Streaming data through Ray Data, for sets too large to load whole (`data.streaming: true`).

On the driver, `build_streaming_data` makes lazy Ray Data datasets for the splits (Parquet, CSV or image
folders, from file:// or s3://) and a `DataInfo` computed from the schema and a sample of the training
rows. The training loop hands the datasets to the `TorchTrainer`; on each worker, `shard_batches` (or
`iter_batches` on a `DataIterator`) yields (inputs, targets) tensor batches, preprocessed as `load_data`
does: feature columns stacked, images scaled to [0, 1] and channels first, class names mapped to indices,
the training normalization applied.

Splits are assigned per row by a seeded hash of the row's content (for images: of the file path), so
they are deterministic, stream without a shuffle, and put identical rows in the same split. They are not
stratified, and the split sizes in `DataInfo` are estimates.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.fs as pafs
import torch
from ray.data.collate_fn import NumpyBatchCollateFn

from dljobs.spec.job import JobSpec
from dljobs.workloads.data.base import DataInfo, InputKind
from dljobs.workloads.data.images import GREY_MODES
from dljobs.workloads.data.loading import UNLABELLED_MODELS
from dljobs.workloads.data.raw import LABEL_FIELD, decide_task
from dljobs.workloads.data.sources import IMAGE_EXTENSIONS, SOURCE_FIELD, Location, detect_format, resolve
from dljobs.workloads.data.stats import apply_normalization, feature_summary, fingerprint, fit_normalization
from dljobs.workloads.errors import WorkloadError

SAMPLE_ROWS = 2048
SPLIT_COLUMN_SEED = 0x9E3779B97F4A7C15
STREAMING_FORMATS = ("parquet", "csv", "images")


@dataclass
class StreamingData:
    info: DataInfo
    train: Any  # ray.data.Dataset
    validation: Any | None
    test: Any | None

    def datasets(self) -> dict[str, Any]:
        """What `TorchTrainer(datasets=...)` takes: the splits that hold rows."""
        named = {"train": self.train, "validation": self.validation, "test": self.test}
        return {name: ds for name, ds in named.items() if ds is not None}


# --- rows into splits ---------------------------------------------------------------------------------


def _splitmix(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def row_fractions(batch: dict[str, np.ndarray], columns: list[str], seed: int) -> np.ndarray:
    """A number in [0, 1) per row, a seeded hash of the row's `columns` (all columns when empty)."""
    names = columns or sorted(batch)
    count = len(batch[names[0]])
    state = np.full(
        count, np.uint64(seed & 0xFFFFFFFFFFFFFFFF) ^ np.uint64(SPLIT_COLUMN_SEED), dtype=np.uint64
    )
    for name in names:
        column = batch[name]
        if column.ndim == 1 and column.dtype.kind in "iufb":
            words = np.ascontiguousarray(column.astype(np.float64)).view(np.uint64)
        else:
            words = np.fromiter((zlib.crc32(_row_bytes(v)) for v in column), dtype=np.uint64, count=count)
        state = _splitmix(state ^ words)
    return (state >> np.uint64(11)).astype(np.float64) / float(2**53)


def _row_bytes(value: Any) -> bytes:
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value).tobytes()
    return str(value).encode()


class KeepSplit:
    """A `map_batches` function keeping the rows of one split (train, validation or test).

    Rows are hashed on `columns` (all columns when empty); a `path` column is hashed relative to `root`,
    so moving the data set keeps its split.
    """

    def __init__(
        self, split: str, columns: list[str], seed: int, validation: float, test: float, root: str = ""
    ) -> None:
        self.split, self.columns, self.seed = split, columns, seed
        self.validation, self.test = validation, test
        self.root = root.rstrip("/") + "/" if root else ""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        hashed = dict(batch)
        if self.root and "path" in batch:
            hashed["path"] = np.asarray([str(p).split(self.root, 1)[-1] for p in batch["path"]])
        fraction = row_fractions(hashed, self.columns, self.seed)
        if self.split == "validation":
            keep = fraction < self.validation
        elif self.split == "test":
            keep = (fraction >= self.validation) & (fraction < self.validation + self.test)
        else:
            keep = fraction >= self.validation + self.test
        return {name: values[keep] for name, values in batch.items()}


# --- batches into tensors -----------------------------------------------------------------------------


class StreamingCollate(NumpyBatchCollateFn):
    """A numpy batch from Ray Data -> (inputs, targets) tensors, as `load_data`'s datasets give them."""

    def __init__(self, info: DataInfo) -> None:
        super().__init__()
        self.info = info
        self.stream = info.preprocessing["stream"]
        self.classes = {name: i for i, name in enumerate(info.class_names or [])}

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        raw = raw_inputs(batch, self.stream, self.info.input_kind)
        inputs = torch.from_numpy(
            apply_normalization(raw, self.info.input_kind, self.info.preprocessing.get("normalization"))
        )
        return inputs, self._targets(batch, inputs)

    def _targets(self, batch: dict[str, np.ndarray], inputs: torch.Tensor) -> torch.Tensor:
        if self.info.task in ("reconstruction", "generation"):
            return inputs
        labels = stream_labels(batch, self.stream)
        if self.info.task == "regression":
            return torch.from_numpy(labels.astype(np.float32).reshape(len(labels), -1))
        try:
            indices = [self.classes[str(v)] for v in labels]
        except KeyError as exc:
            raise WorkloadError(
                f"label {exc} was not among the classes found when the job started", field=LABEL_FIELD
            ) from exc
        return torch.tensor(indices, dtype=torch.int64)


def raw_inputs(batch: dict[str, np.ndarray], stream: dict[str, Any], kind: InputKind) -> np.ndarray:
    """Raw float inputs of a batch: stacked feature columns, or images (B, C, H, W) in [0, 1]."""
    if kind == "image":
        images = batch["image"]
        if images.dtype == object:
            sizes = sorted({tuple(np.asarray(i).shape[:2]) for i in images})
            raise WorkloadError(
                f"images differ in size ({', '.join(f'{h}x{w}' for h, w in sizes)}): set "
                "data.image_size to resize them all",
                field="data.image_size",
            )
        scaled = images.astype(np.float32) / 255.0
        return scaled[:, None] if scaled.ndim == 3 else scaled.transpose(0, 3, 1, 2)
    columns = stream["feature_columns"]
    return np.stack([np.asarray(batch[c], dtype=np.float32) for c in columns], axis=1)


def stream_labels(batch: dict[str, np.ndarray], stream: dict[str, Any]) -> np.ndarray:
    if stream["format"] == "images":
        root = stream["root"].rstrip("/") + "/"
        return np.asarray([str(p).split(root, 1)[-1].split("/")[0] for p in batch["path"]])
    return batch[stream["label_column"]]


def iter_batches(
    shard: Any,
    info: DataInfo,
    *,
    batch_size: int,
    shuffle_buffer: int | None = None,
    seed: int | None = None,
    drop_last: bool = False,
    device: str = "auto",
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, targets) batches from a Ray Data `DataIterator` (a worker's shard) or `Dataset`.

    `shuffle_buffer` rows are shuffled locally (seeded by `seed`); on a Ray Train worker the tensors land
    on the worker's device.
    """
    iterator = shard.iterator() if hasattr(shard, "iterator") else shard
    return iterator.iter_torch_batches(
        batch_size=batch_size,
        collate_fn=StreamingCollate(info),
        drop_last=drop_last,
        local_shuffle_buffer_size=shuffle_buffer if shuffle_buffer and shuffle_buffer >= batch_size else None,
        local_shuffle_seed=seed if shuffle_buffer else None,
        device=device,
    )


def shard_batches(
    name: str, info: DataInfo, *, batch_size: int, **options: Any
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """Inside a Ray Train worker: the batches of this worker's shard of dataset `name`."""
    import ray.train

    return iter_batches(ray.train.get_dataset_shard(name), info, batch_size=batch_size, **options)


# --- the driver side ----------------------------------------------------------------------------------


def build_streaming_data(spec: JobSpec, *, seed: int, sample_rows: int = SAMPLE_ROWS) -> StreamingData:
    """Lazy Ray Data datasets for the splits of a Parquet, CSV or image-folder source, and their DataInfo."""

    data = spec.data
    if data is None:
        raise WorkloadError("the job has no data section: add one with a source", field="data")
    if data.builtin_name:
        raise WorkloadError(
            "built-in data sets load in memory: set data.streaming to false", field="data.streaming"
        )
    location = resolve(data.source)
    fmt = detect_format(location, data.format)
    if fmt not in STREAMING_FORMATS:
        raise WorkloadError(
            f"streaming reads {', '.join(STREAMING_FORMATS)}; {fmt} loads in memory: set "
            "data.streaming to false",
            field="data.streaming",
        )
    files = _source_files(location, fmt)
    model = spec.workload.model
    stream: dict[str, Any] = {"format": fmt, "root": location.path}
    mode = "L" if fmt == "images" and _all_grey(location, files[:16]) else "RGB"
    split_columns = ["path"] if fmt == "images" else []  # tabular rows hash on all their columns

    def train_rows_of(source: Any, name: str) -> Any:
        keep = KeepSplit(
            name, split_columns, seed, data.validation_split, data.test_split, root=location.path
        )
        return source.map_batches(keep, batch_format="numpy")

    source = _read(fmt, files, location, data.image_size, mode)
    splits = {name: train_rows_of(source, name) for name in ("train", "validation", "test")}
    # The statistics come from the first training rows in file order: a dataset of its own, created to
    # keep the order (Ray Data reorders blocks otherwise), so every run fits the same numbers.
    sample = _first_rows(
        lambda: train_rows_of(_read(fmt, files, location, data.image_size, mode), "train"), sample_rows
    )
    if not sample or len(next(iter(sample.values()))) == 0:
        raise WorkloadError(f"no training rows could be read from '{data.source}'", field=SOURCE_FIELD)
    if fmt == "images":
        classes = sorted(
            {location.relative(f.path).split("/")[0] for f in files if "/" in location.relative(f.path)}
        )
        task = decide_task(model, np.asarray(classes) if classes else None, bool(classes))
        kind: InputKind = "image"
        total = len(files)
    else:
        columns = list(sample)
        label = data.label_column
        if label not in columns and model not in UNLABELLED_MODELS:
            raise WorkloadError(
                f"no column '{label}' in '{data.source}' (columns: {', '.join(columns)})", field=LABEL_FIELD
            )
        features = [c for c in columns if c != label]
        for name in features:
            if np.asarray(sample[name]).dtype.kind not in "iufb":
                raise WorkloadError(
                    f"feature column '{name}' is not numeric: feature columns must hold numbers",
                    field=SOURCE_FIELD,
                )
        stream.update(feature_columns=features, label_column=label if label in columns else None)
        labels = np.asarray(sample[label]) if label in columns else None
        task = decide_task(model, labels, False)
        total, classes = _scan_rows_and_classes(source, label if task == "classification" else None)
        kind = "tabular"
    if task == "classification" and len(classes) < 2:
        raise WorkloadError(
            f"the labels hold {len(classes)} class(es): classification needs at least two", field=LABEL_FIELD
        )
    raw = raw_inputs(sample, stream, kind)
    preprocessing: dict[str, Any] = {"stream": stream}
    if data.normalize:
        preprocessing["normalization"] = fit_normalization(
            raw, kind, "minmax" if task == "generation" else "standard"
        )
    target_dim = None
    if task == "regression":
        target_dim = int(np.asarray(sample[data.label_column]).reshape(len(raw), -1).shape[1])
    train_share = 1.0 - data.validation_split - data.test_split
    info = DataInfo(
        task=task,
        input_kind=kind,
        input_shape=tuple(int(d) for d in raw.shape[1:]),
        input_dtype="float32",
        num_classes=len(classes) if task == "classification" else None,
        class_names=list(classes) if task == "classification" else None,
        target_dim=target_dim,
        fingerprint=fingerprint(
            {
                "source": data.source,
                "format": fmt,
                "label_column": data.label_column,
                "image_size": data.image_size,
                "streaming": True,
            },
            [np.asarray([f"{f.path}\x1f{f.size}\x1f{f.mtime_ns}" for f in files])],
        ),
        num_train=round(total * train_share),
        num_val=round(total * data.validation_split),
        num_test=round(total * data.test_split),
        feature_summary=feature_summary(raw, kind, feature_names=stream.get("feature_columns"), seed=seed),
        preprocessing=preprocessing,
    )
    return StreamingData(
        info=info,
        train=splits["train"],
        validation=splits["validation"] if data.validation_split > 0 else None,
        test=splits["test"] if data.test_split > 0 else None,
    )


def _read(fmt: str, files: list[pafs.FileInfo], location: Location, image_size: int | None, mode: str) -> Any:
    import ray.data

    paths = [f.path for f in files]
    if fmt == "images":
        size = (image_size, image_size) if image_size else None
        return ray.data.read_images(
            paths, filesystem=location.filesystem, size=size, mode=mode, include_paths=True
        )
    reader = ray.data.read_parquet if fmt == "parquet" else ray.data.read_csv
    return reader(paths, filesystem=location.filesystem)


def _first_rows(make_dataset: Callable[[], Any], count: int) -> dict[str, np.ndarray]:
    """The first `count` rows of the dataset `make_dataset` creates, in order. A dataset keeps the
    execution options current when it was read, so the order is switched on around its creation."""
    import ray.data

    options = ray.data.DataContext.get_current().execution_options
    previous = options.preserve_order
    options.preserve_order = True
    try:
        dataset = make_dataset()
    finally:
        options.preserve_order = previous
    try:
        return dataset.take_batch(count, batch_format="numpy")
    except ValueError:  # no rows at all
        return {}


def _source_files(location: Location, fmt: str) -> list[pafs.FileInfo]:
    if not location.is_dir():
        return [location.info()]
    extensions = {
        "parquet": (".parquet", ".pq"),
        "csv": (".csv", ".csv.gz", ".tsv"),
        "images": IMAGE_EXTENSIONS,
    }
    files = [f for f in location.list_files() if f.path.lower().endswith(extensions[fmt])]
    if not files:
        raise WorkloadError(f"no {fmt} files under '{location.url}'", field=SOURCE_FIELD)
    return files


def _all_grey(location: Location, files: list[pafs.FileInfo]) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        return all(Image.open(io.BytesIO(location.read_bytes(f.path))).mode in GREY_MODES for f in files)
    except (UnidentifiedImageError, OSError) as exc:
        raise WorkloadError(
            f"an image under '{location.url}' is not readable: {exc}", field=SOURCE_FIELD
        ) from exc


class _LabelScan:
    """A `map_batches` function: one row per batch with its row count and its distinct labels."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = batch[self.label]
        if values.dtype == object and any(v is None for v in values):
            raise WorkloadError(f"label column '{self.label}' has missing values", field=LABEL_FIELD)
        distinct = np.unique(values)
        return {"rows": np.array([len(values)]), "labels": np.array(["\x1f".join(map(str, distinct))])}


def _scan_rows_and_classes(source: Any, label: str | None) -> tuple[int, list[str]]:
    """The number of rows and, given a label column, its distinct values as class names: one pass that
    reads only that column (for Parquet). Without labels, the count alone (Parquet: from its metadata)."""
    if label is None:
        return source.count(), []
    scanned = source.select_columns([label]).map_batches(_LabelScan(label), batch_format="numpy")
    rows = 0
    values: set[str] = set()
    numeric = True
    for part in scanned.iter_batches(batch_size=None, batch_format="numpy"):
        rows += int(part["rows"].sum())
        for joined in part["labels"]:
            for value in str(joined).split("\x1f") if joined else []:
                values.add(value)
                numeric = numeric and value.lstrip("-").isdigit()
    classes = sorted(values, key=int) if numeric and values else sorted(values)
    return rows, classes
