"""Train / validation / test splits: seeded, stratified by class when there are classes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SplitIndices:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_indices(
    count: int,
    *,
    validation: float,
    test: float,
    seed: int,
    stratify: np.ndarray | None = None,
    shuffle: bool = True,
) -> SplitIndices:
    """Index arrays for the three splits.

    With `shuffle` the split is random for `seed` and, given `stratify` (class indices), every class keeps
    its share in each split and at least one training example. Without `shuffle` the order is kept:
    training first, then validation, then test (for data whose order matters, such as time).
    """
    if not shuffle:
        n_val, n_test = _counts(count, validation, test)
        n_train = count - n_val - n_test
        order = np.arange(count)
        return SplitIndices(order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(count)
        n_val, n_test = _counts(count, validation, test)
        n_train = count - n_val - n_test
        return SplitIndices(order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in np.unique(stratify):
        members = rng.permutation(np.flatnonzero(stratify == cls))
        n_val, n_test = _counts(len(members), validation, test)
        n_train = len(members) - n_val - n_test
        parts["train"].append(members[:n_train])
        parts["val"].append(members[n_train : n_train + n_val])
        parts["test"].append(members[n_train + n_val :])
    # Interleave classes so the training order carries no class order.
    merged = {name: rng.permutation(np.concatenate(chunks)) for name, chunks in parts.items()}
    return SplitIndices(merged["train"], merged["val"], merged["test"])


def _counts(count: int, validation: float, test: float) -> tuple[int, int]:
    """Validation and test sizes, leaving at least one example to train on."""
    n_val = round(count * validation)
    n_test = round(count * test)
    while n_val + n_test >= count and n_val + n_test > 0:
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test
