"""Statistics of the training inputs: normalization, the drift summary, and the data's fingerprint."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from dljobs.workloads.data.base import InputKind

MAX_SUMMARY_FEATURES = 64
SUMMARY_QUANTILES = 10  # decile bins
_MAX_SUMMARY_VALUES = 200_000  # values per feature used for its quantiles


def _channel_view(inputs: np.ndarray, kind: InputKind) -> np.ndarray:
    """(values, features) where a feature is a column (tabular) or a channel (images, sequences)."""
    if kind == "image":  # (N, C, H, W)
        return np.moveaxis(inputs, 1, -1).reshape(-1, inputs.shape[1])
    if kind == "sequence":  # (N, T, C)
        return inputs.reshape(-1, inputs.shape[-1])
    return inputs.reshape(len(inputs), -1)


def normalization_per(kind: InputKind) -> str:
    return "channel" if kind in ("image", "sequence") else "feature"


def fit_normalization(inputs: np.ndarray, kind: InputKind, method: str) -> dict[str, Any]:
    """Shift and scale fitted on training inputs: model input = (raw - shift) / scale.

    `standard` centres on the mean and divides by the standard deviation; `minmax` maps the training
    range onto [-1, 1] (what a generator's tanh output can reach). A constant feature gets scale 1.
    """
    values = _channel_view(inputs, kind).astype(np.float64)
    if method == "minmax":
        low, high = values.min(axis=0), values.max(axis=0)
        shift, scale = (high + low) / 2, (high - low) / 2
    else:
        shift, scale = values.mean(axis=0), values.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    return {
        "method": method,
        "per": normalization_per(kind),
        "shift": shift.tolist(),
        "scale": scale.tolist(),
    }


def broadcast_shape(kind: InputKind, features: int) -> tuple[int, ...]:
    """How a normalization vector lines up with a batch of inputs of this kind."""
    if kind == "image":
        return (1, features, 1, 1)
    if kind == "sequence":
        return (1, 1, features)
    return (1, features)


def apply_normalization(
    inputs: np.ndarray, kind: InputKind, normalization: dict[str, Any] | None
) -> np.ndarray:
    """A batch (N, ...) of raw inputs, normalized as the model saw them in training."""
    if not normalization:
        return inputs.astype(np.float32, copy=False)
    shape = broadcast_shape(kind, len(normalization["shift"]))
    flat = inputs.reshape(len(inputs), -1) if kind == "tabular" else inputs
    shift = np.asarray(normalization["shift"], dtype=np.float32).reshape(shape)
    scale = np.asarray(normalization["scale"], dtype=np.float32).reshape(shape)
    return ((flat - shift) / scale).astype(np.float32).reshape(inputs.shape)


def feature_summary(
    inputs: np.ndarray,
    kind: InputKind,
    *,
    feature_names: list[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-feature mean, std and decile bins of the training inputs, for a later drift check.

    Images and sequences are summarised per channel; token sequences by their length and the share of
    unknown tokens. Tabular data with more than 64 columns keeps the 64 of highest variance.
    `fractions` is the share of training values in each bin (ties make them differ from 0.1).
    """
    if kind == "tokens":
        lengths = (inputs != 0).sum(axis=1).astype(np.float64)
        unknown = ((inputs == 1).sum(axis=1) / np.maximum(lengths, 1)).astype(np.float64)
        columns = np.stack([lengths, unknown], axis=1)
        names = ["length", "unknown_fraction"]
    else:
        columns = _channel_view(inputs, kind)
        if kind == "tabular":
            names = feature_names or [f"x{i}" for i in range(columns.shape[1])]
        else:
            names = [f"channel_{i}" for i in range(columns.shape[1])]
    total = columns.shape[1]
    chosen = np.arange(total)
    if total > MAX_SUMMARY_FEATURES:
        variances = columns[:_MAX_SUMMARY_VALUES].astype(np.float64).var(axis=0)
        chosen = np.sort(np.argsort(-variances, kind="stable")[:MAX_SUMMARY_FEATURES])
    rng = np.random.default_rng(seed)
    if len(columns) > _MAX_SUMMARY_VALUES:
        columns = columns[rng.choice(len(columns), _MAX_SUMMARY_VALUES, replace=False)]
    features = []
    for index in chosen:
        values = columns[:, index].astype(np.float64)
        edges = np.quantile(values, np.linspace(0.0, 1.0, SUMMARY_QUANTILES + 1))
        counts = (
            np.histogram(values, bins=np.unique(edges))[0] if np.ptp(values) > 0 else np.array([len(values)])
        )
        features.append(
            {
                "name": names[index],
                "index": int(index),
                "mean": float(values.mean()),
                "std": float(values.std()),
                "bins": [float(e) for e in np.unique(edges)],
                "fractions": [float(c) / len(values) for c in counts],
            }
        )
    return {
        "kind": kind,
        "per": "channel" if kind in ("image", "sequence") else "feature",
        "num_features": int(total),
        "num_examples": len(inputs),
        "features": features,
    }


def fingerprint(identity: dict[str, Any], parts: Iterable[np.ndarray | list[str] | None]) -> str:
    """sha256 over what names the data (source, format, options) and its content."""
    digest = hashlib.sha256()
    digest.update(json.dumps(identity, sort_keys=True, default=str).encode())
    for part in parts:
        if part is None:
            digest.update(b"\x00none")
        elif isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            digest.update(f"\x00{array.dtype.str}{array.shape}".encode())
            if array.dtype.kind in "OU":
                digest.update("\x1f".join(map(str, array.ravel())).encode())
            else:
                digest.update(array.tobytes())
        else:
            digest.update(b"\x00texts")
            for text in part:
                digest.update(text.encode())
                digest.update(b"\x1f")
    return digest.hexdigest()
