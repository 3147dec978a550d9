"""Metrics against scikit-learn on known inputs, on one worker and split unevenly across two (gloo)."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn import metrics as skm

from dljobs.spec.training import EarlyStoppingSpec, ScheduleSpec, TrainingSpec
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.errors import WorkloadError
from dljobs.workloads.train.metrics import (
    ClassificationStats,
    Mean,
    ReconstructionStats,
    RegressionStats,
    Tracker,
    check_monitored,
    epoch_metric_names,
    roc_auc,
)

RNG = np.random.default_rng(7)
LABELS = RNG.integers(0, 4, 203)
LABELS[LABELS == 3] = 2  # class 3 never occurs as a label...
LOGITS = RNG.normal(size=(203, 4)).astype(np.float32)
LOGITS[:5, 3] = 10.0  # ...but is predicted five times (scikit-learn averages over labels that occur)


def classification_info(classes: int) -> DataInfo:
    return DataInfo(
        task="classification",
        input_kind="tabular",
        input_shape=(4,),
        input_dtype="float32",
        num_classes=classes,
    )


def test_classification_matches_scikit_learn() -> None:
    stats = ClassificationStats(4)
    logits, labels = torch.from_numpy(LOGITS), torch.from_numpy(LABELS)
    for start in range(0, len(labels), 50):
        chunk = slice(start, start + 50)
        loss = float(torch.nn.functional.cross_entropy(logits[chunk], labels[chunk], reduction="sum"))
        stats.update(logits[chunk], labels[chunk], loss)
    result = stats.result("val")
    predicted = LOGITS.argmax(1)
    assert result.scalars["val_accuracy"] == pytest.approx(skm.accuracy_score(LABELS, predicted))
    for name in ("precision", "recall", "f1"):
        expected = getattr(skm, f"{name}_score")(LABELS, predicted, average="macro", zero_division=0)
        assert result.scalars[f"val_{name}"] == pytest.approx(expected), name
    assert result.confusion_matrix == skm.confusion_matrix(LABELS, predicted, labels=range(4)).tolist()
    expected_loss = skm.log_loss(LABELS, torch.softmax(logits, 1).numpy(), labels=range(4))
    assert result.scalars["val_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert "val_auc" not in result.scalars


def test_binary_roc_auc_matches_scikit_learn_with_ties() -> None:
    labels = RNG.integers(0, 2, 300)
    scores = np.round(RNG.random(300) + labels * 0.3, 1)  # rounding makes many ties
    assert roc_auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores))
    assert roc_auc(np.ones(5, dtype=int), scores[:5]) is None
    stats = ClassificationStats(2)
    logits = torch.from_numpy(RNG.normal(size=(300, 2)).astype(np.float32))
    stats.update(logits, torch.from_numpy(labels), 0.0)
    result = stats.result("test")
    expected = skm.roc_auc_score(labels, torch.softmax(logits, 1)[:, 1].numpy())
    assert result.scalars["test_auc"] == pytest.approx(expected)


def test_regression_matches_scikit_learn_over_several_outputs() -> None:
    actual = RNG.normal(size=(157, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -3.0]
    predicted = actual + RNG.normal(size=actual.shape) * [0.5, 4.0, 0.01]
    stats = RegressionStats()
    for start in range(0, 157, 40):
        stats.update(
            torch.from_numpy(predicted[start : start + 40]), torch.from_numpy(actual[start : start + 40]), 0
        )
    scalars = stats.result("val").scalars
    assert scalars["val_mse"] == pytest.approx(skm.mean_squared_error(actual, predicted))
    assert scalars["val_loss"] == scalars["val_mse"]
    assert scalars["val_mae"] == pytest.approx(skm.mean_absolute_error(actual, predicted))
    assert scalars["val_r2"] == pytest.approx(skm.r2_score(actual, predicted))


def test_reconstruction_loss_is_the_mean_squared_error_per_element() -> None:
    inputs = torch.randn(10, 1, 4, 4)
    outputs = inputs + 0.1 * torch.randn_like(inputs)
    stats = ReconstructionStats()
    stats.update(outputs, inputs, 0.0)
    scalars = stats.result("test").scalars
    assert scalars["test_reconstruction_loss"] == pytest.approx(float(((outputs - inputs) ** 2).mean()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _distributed_worker(rank: int, port: int, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        # Uneven shards, 150 and 53 examples: an average of per-rank ratios would be wrong.
        part = slice(0, 150) if rank == 0 else slice(150, 203)
        classes = ClassificationStats(4)
        classes.update(torch.from_numpy(LOGITS[part]), torch.from_numpy(LABELS[part]), 0.0)
        binary = ClassificationStats(2)
        binary.update(
            torch.from_numpy(LOGITS[part, :2]), torch.from_numpy((LABELS[part] > 0).astype(np.int64)), 0.0
        )
        regression = RegressionStats()
        regression.update(
            torch.from_numpy(LOGITS[part, :2]).double(), torch.from_numpy(LOGITS[part, 2:]).double(), 0
        )
        mean = Mean()
        mean.add(float(rank + 1), 150 if rank == 0 else 53)
        out[rank] = {
            **classes.result("val").scalars,
            **binary.result("bin").scalars,
            **regression.result("reg").scalars,
            "mean": mean.reduced(),
        }
    finally:
        dist.destroy_process_group()


def test_metrics_are_exact_across_uneven_workers() -> None:
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_distributed_worker, args=(_free_port(), out), nprocs=2, join=True)
        results = dict(out)
    assert results[0] == results[1]
    got = results[0]
    predicted = LOGITS.argmax(1)
    assert got["val_accuracy"] == pytest.approx(skm.accuracy_score(LABELS, predicted))
    assert got["val_f1"] == pytest.approx(skm.f1_score(LABELS, predicted, average="macro", zero_division=0))
    binary_scores = torch.softmax(torch.from_numpy(LOGITS[:, :2]), 1)[:, 1].numpy()
    assert got["bin_auc"] == pytest.approx(skm.roc_auc_score(LABELS > 0, binary_scores))
    assert got["reg_r2"] == pytest.approx(skm.r2_score(LOGITS[:, 2:], LOGITS[:, :2]))
    assert got["mean"] == pytest.approx((1 * 150 + 2 * 53) / 203)


def test_metric_names_follow_the_task() -> None:
    assert "val_auc" in epoch_metric_names(classification_info(2), has_validation=True)
    assert "val_auc" not in epoch_metric_names(classification_info(3), has_validation=True)
    regression = DataInfo(task="regression", input_kind="tabular", input_shape=(3,), input_dtype="float32")
    assert {"val_mse", "val_mae", "val_r2"} <= set(epoch_metric_names(regression, has_validation=True))
    gan = DataInfo(task="generation", input_kind="image", input_shape=(1, 8, 8), input_dtype="float32")
    assert epoch_metric_names(gan, has_validation=True)[:2] == ["g_loss", "d_loss"]


def test_monitored_metrics_are_checked_naming_the_field() -> None:
    info = classification_info(10)
    training = TrainingSpec(best_metric="val_auc")
    with pytest.raises(WorkloadError, match="'val_auc' is not available") as caught:
        check_monitored(training, info, has_validation=True)
    assert caught.value.field == "training.best_metric"
    assert "10-class classification" in str(caught.value)
    training = TrainingSpec(early_stopping=EarlyStoppingSpec(metric="val_r2"))
    with pytest.raises(WorkloadError) as caught:
        check_monitored(training, info, has_validation=True)
    assert caught.value.field == "training.early_stopping.metric"
    training = TrainingSpec(schedule=ScheduleSpec(name="reduce_on_plateau", monitor="val_accuracy"))
    with pytest.raises(WorkloadError, match="no validation split") as caught:
        check_monitored(training, info, has_validation=False)
    assert caught.value.field == "training.schedule.monitor"
    with pytest.raises(WorkloadError, match="once training has ended"):
        check_monitored(TrainingSpec(best_metric="test_accuracy"), info, has_validation=True)


def test_the_default_val_loss_falls_back_to_the_training_loss() -> None:
    monitored = check_monitored(TrainingSpec(), classification_info(3), has_validation=False)
    assert monitored.best == "train_loss" and monitored.early_stopping is None and monitored.plateau is None
    gan = DataInfo(task="generation", input_kind="tabular", input_shape=(4,), input_dtype="float32")
    assert check_monitored(TrainingSpec(), gan, has_validation=True).best == "g_loss"
    assert check_monitored(TrainingSpec(), classification_info(3), has_validation=True).best == "val_loss"


def test_tracker_counts_epochs_without_improvement() -> None:
    tracker = Tracker("val_loss", "min", min_delta=0.05)
    assert tracker.update(1.0, 1) is True
    assert tracker.update(0.97, 2) is False  # not better by min_delta
    assert tracker.update(float("nan"), 3) is False
    assert tracker.epochs_without_improvement == 2
    assert (
        tracker.update(0.9, 4) is True and tracker.best_epoch == 4 and tracker.epochs_without_improvement == 0
    )
    assert tracker.score(0.9) > tracker.score(1.0) > tracker.score(None)
    maximise = Tracker("val_accuracy", "max")
    assert maximise.score(0.9) > maximise.score(0.8)
