"""Tabular files (CSV, Parquet) and NumPy archives (NPZ) into `RawData`."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dljobs.workloads.data.raw import LABEL_FIELD, RawData
from dljobs.workloads.data.sources import SOURCE_FIELD, Location
from dljobs.workloads.errors import WorkloadError

TOKEN_MODELS = ("lstm", "gru", "transformer")


def read_csv_table(location: Location) -> pa.Table:
    """The whole CSV (or TSV) as a table; a malformed file is reported with its first bad line."""
    import pyarrow.csv as pacsv

    data = location.read_bytes()
    delimiter = "\t" if location.path.lower().endswith(".tsv") else ","
    try:
        return pacsv.read_csv(io.BytesIO(data), parse_options=pacsv.ParseOptions(delimiter=delimiter))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        line = _first_bad_line(data, delimiter)
        where = f" at line {line}" if line else ""
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WorkloadError(
            f"'{location.url}' is not valid CSV{where}: {detail}", field=SOURCE_FIELD
        ) from exc


def _first_bad_line(data: bytes, delimiter: str) -> int | None:
    """The 1-based line whose field count differs from the header's (None if none is found)."""
    text = data.decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return 1
    try:
        for row in reader:
            if row and len(row) != len(header):
                return reader.line_num
    except csv.Error:
        return reader.line_num
    return None


def read_parquet_table(location: Location) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(location.path, filesystem=location.filesystem)
    except (pa.ArrowInvalid, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WorkloadError(
            f"'{location.url}' is not a readable Parquet file: {detail}", field=SOURCE_FIELD
        ) from exc


def table_to_raw(
    table: pa.Table, *, label_column: str, needs_labels: bool, identity: dict[str, object], source: str
) -> RawData:
    """Numeric feature columns into (N, F) float32 inputs; the label column kept aside."""
    columns = table.column_names
    if label_column not in columns:
        if needs_labels:
            raise WorkloadError(
                f"no column '{label_column}' in '{source}' (columns: {', '.join(columns)})", field=LABEL_FIELD
            )
        labels = None
    else:
        labels = column_labels(table.column(label_column), label_column)
    feature_names = [c for c in columns if c != label_column]
    if not feature_names:
        raise WorkloadError(f"'{source}' has no feature columns besides '{label_column}'", field=SOURCE_FIELD)
    features = np.stack([_numeric_column(table.column(name), name) for name in feature_names], axis=1)
    if not np.isfinite(features).all():
        rows, cols = np.nonzero(~np.isfinite(features))
        raise WorkloadError(
            f"feature column '{feature_names[cols[0]]}' holds a NaN or infinite value (row {rows[0] + 1})",
            field=SOURCE_FIELD,
        )
    return RawData(
        input_kind="tabular",
        identity=identity,
        inputs=features.astype(np.float32),
        labels=labels,
        feature_names=feature_names,
    )


def _numeric_column(column: pa.ChunkedArray, name: str) -> np.ndarray:
    kind = column.type
    if not (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
    ):
        bad = _first_non_number(column)
        where = f" (row {bad[0] + 1}: '{bad[1]}')" if bad else ""
        raise WorkloadError(
            f"feature column '{name}' is not numeric{where}: feature columns must hold numbers",
            field=SOURCE_FIELD,
        )
    missing = column.null_count
    if missing:
        first = pc.index(pc.is_null(column), True).as_py()
        raise WorkloadError(
            f"feature column '{name}' has {missing} missing values (first at row {first + 1})",
            field=SOURCE_FIELD,
        )
    return column.cast(pa.float64()).to_numpy()


def _first_non_number(column: pa.ChunkedArray) -> tuple[int, str] | None:
    for row, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            return row, str(value)
    return None


def column_labels(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """A label column as numpy: strings, integers, booleans or floats; missing labels are an error."""
    if column.null_count:
        first = pc.index(pc.is_null(column), True).as_py()
        raise WorkloadError(
            f"label column '{name}' has {column.null_count} missing values (first at row {first + 1})",
            field=LABEL_FIELD,
        )
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.asarray(column.to_pylist(), dtype=str)
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_floating(kind):
        return column.to_numpy()
    raise WorkloadError(f"label column '{name}' has type {kind}: use strings or numbers", field=LABEL_FIELD)


def read_npz(
    location: Location, *, model: str | None, needs_labels: bool, identity: dict[str, object]
) -> RawData:
    """Arrays `x` (N, ...) and `y` (N,) or (N, D): 2-D x is tabular (token ids for sequence models when
    integer), 3-D a sequence (N, T, C), 4-D images (N, C, H, W)."""
    try:
        archive = np.load(io.BytesIO(location.read_bytes()), allow_pickle=False)
        arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise WorkloadError(
            f"'{location.url}' is not a readable NPZ archive: {exc}", field=SOURCE_FIELD
        ) from exc
    if "x" not in arrays:
        present = ", ".join(sorted(arrays)) or "none"
        raise WorkloadError(f"the archive has no array 'x' (arrays: {present})", field=SOURCE_FIELD)
    x = arrays["x"]
    y = arrays.get("y")
    if y is None and needs_labels:
        present = ", ".join(sorted(arrays))
        raise WorkloadError(
            f"the archive has no array 'y' with the labels (arrays: {present})", field=LABEL_FIELD
        )
    if x.dtype.kind not in "iufb":
        raise WorkloadError(f"array 'x' has type {x.dtype}: it must hold numbers", field=SOURCE_FIELD)
    if x.ndim == 2 and x.dtype.kind in "iu" and model in TOKEN_MODELS:
        if x.min() < 0:
            raise WorkloadError("array 'x' holds negative token ids", field=SOURCE_FIELD)
        return RawData(input_kind="tokens", identity=identity, inputs=x.astype(np.int64), labels=y)
    kinds = {2: "tabular", 3: "sequence", 4: "image"}
    if x.ndim not in kinds:
        raise WorkloadError(
            f"array 'x' has shape {x.shape}: use (N, features), (N, time, channels) or (N, channels, height, "
            "width)",
            field=SOURCE_FIELD,
        )
    inputs = x.astype(np.float32)
    if not np.isfinite(inputs).all():
        raise WorkloadError("array 'x' holds missing or infinite values", field=SOURCE_FIELD)
    return RawData(input_kind=kinds[x.ndim], identity=identity, inputs=inputs, labels=y)  # type: ignore[arg-type]
