"""Metrics of validation, test and training, exact across workers.

Each worker accumulates sufficient statistics (a confusion matrix, sums of errors and squares, counts) and
the workers add them up with one all-reduce before any ratio is taken, so four workers report the metric of
the whole split, not an average of four ratios. ROC-AUC needs the scores themselves: they are gathered.

Names: `val_*` after each epoch, `test_*` once at the end, `train_loss`, `samples_per_second`,
`epoch_time`; GANs report `g_loss` and `d_loss`. The metric a spec monitors (training.best_metric,
training.early_stopping.metric, training.schedule.monitor) must be one this job produces: `check_monitored`
says so before training starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from dljobs.spec.training import TrainingSpec
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.errors import WorkloadError

ALWAYS = ("samples_per_second", "epoch_time")
EVALUATED = {
    "classification": ("loss", "accuracy", "precision", "recall", "f1"),
    "regression": ("loss", "mse", "mae", "r2"),
    "reconstruction": ("loss", "reconstruction_loss"),
    "generation": (),
}
DEFAULT_MONITOR = "val_loss"
WORST_SCORE = -1e300  # finite: checkpoint scores are stored as JSON


# --- which metrics a job has ---------------------------------------------------------------------------


def evaluated_names(info: DataInfo) -> tuple[str, ...]:
    """The suffixes that validation and test produce for this task (`loss`, `accuracy`, ...)."""
    names = EVALUATED[info.task]
    if info.task == "classification" and info.num_classes == 2:
        names = (*names, "auc")
    return names


def epoch_metric_names(info: DataInfo, *, has_validation: bool) -> list[str]:
    """Every scalar reported at the end of an epoch: what a spec may monitor."""
    training = ["g_loss", "d_loss"] if info.task == "generation" else ["train_loss"]
    validation = [f"val_{name}" for name in evaluated_names(info)] if has_validation else []
    return [*training, *validation, *ALWAYS]


def fallback_monitor(info: DataInfo) -> str:
    """What the default `val_loss` means when a job has no validation loss: its training loss."""
    return "g_loss" if info.task == "generation" else "train_loss"


@dataclass(frozen=True)
class Monitored:
    """The metrics the loop watches, checked against what the job produces."""

    best: str
    early_stopping: str | None
    plateau: str | None


def check_monitored(training: TrainingSpec, info: DataInfo, *, has_validation: bool) -> Monitored:
    """Resolve and check the monitored metrics; a name this job never reports is a WorkloadError."""
    available = epoch_metric_names(info, has_validation=has_validation)

    def resolve(name: str, where: str) -> str:
        if name in available:
            return name
        if name == DEFAULT_MONITOR:
            return fallback_monitor(info)
        if (
            name.startswith("val_")
            and not has_validation
            and name.removeprefix("val_") in evaluated_names(info)
        ):
            reason = "this job has no validation split (data.validation_split is 0)"
        elif name.startswith("test_"):
            reason = "test metrics exist only once training has ended"
        else:
            reason = f"a {describe_task(info)} job does not report it"
        raise WorkloadError(
            f"'{name}' is not available: {reason}; choose one of: {', '.join(available)}", field=where
        )

    early = training.early_stopping
    schedule = training.schedule
    return Monitored(
        best=resolve(training.best_metric, "training.best_metric"),
        early_stopping=resolve(early.metric, "training.early_stopping.metric") if early else None,
        plateau=resolve(schedule.monitor, "training.schedule.monitor")
        if schedule.name == "reduce_on_plateau"
        else None,
    )


def describe_task(info: DataInfo) -> str:
    if info.task == "classification":
        return (
            "binary classification" if info.num_classes == 2 else f"{info.num_classes}-class classification"
        )
    return info.task


# --- across workers -------------------------------------------------------------------------------------


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """The tensor combined over every worker (sum or max); itself when training on one worker."""
    if not is_distributed():
        return tensor
    device = tensor.device
    work = tensor.to(_collective_device())
    dist.all_reduce(work, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return work.to(device)


def all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every worker's rows (workers may hold different numbers of rows)."""
    if not is_distributed():
        return tensor
    device = _collective_device()
    work = tensor.to(device)
    count = torch.tensor([work.shape[0]], device=device, dtype=torch.int64)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    longest = int(max(int(c) for c in counts))
    padded = torch.zeros((longest, *work.shape[1:]), dtype=work.dtype, device=device)
    padded[: work.shape[0]] = work
    parts = [torch.zeros_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(c)] for part, c in zip(parts, counts, strict=True)]).to(tensor.device)


# --- accumulators -----------------------------------------------------------------------------------------


class Mean:
    """A weighted mean of per-batch values (e.g. the training loss), exact across workers.

    Tensor values are kept as they are (on their device) until the mean is read: adding one costs no
    kernel and never waits for a GPU.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self._pending: list[tuple[torch.Tensor, int]] = []

    def add(self, value: float | torch.Tensor, weight: int) -> None:
        if isinstance(value, torch.Tensor):
            self._pending.append((value.detach(), weight))
        else:
            self.total += float(value) * weight
        self.count += weight

    def _settle(self) -> float:
        if self._pending:
            values = torch.stack([v.reshape(()) for v, _ in self._pending]).double().cpu()
            weights = torch.tensor([w for _, w in self._pending], dtype=torch.float64)
            self.total += float((values * weights).sum())
            self._pending = []
        return self.total

    def reduced(self) -> float | None:
        summed = all_reduce(torch.tensor([self._settle(), float(self.count)], dtype=torch.float64))
        return float(summed[0] / summed[1]) if summed[1] > 0 else None

    def state_dict(self) -> dict[str, float]:
        return {"total": self._settle(), "count": self.count}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.total, self.count, self._pending = float(state["total"]), int(state["count"]), []


@dataclass
class EvaluationResult:
    """Scalars by name (`val_loss`, ...) and, for classification, the confusion matrix (rows: true)."""

    scalars: dict[str, float]
    confusion_matrix: list[list[int]] | None = None


class ClassificationStats:
    """Loss sum, confusion matrix and (binary) scores: accuracy, macro precision/recall/F1, ROC-AUC."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.loss_sum = 0.0
        self.confusion = torch.zeros((num_classes, num_classes), dtype=torch.int64)
        self.scores: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss_sum: float) -> None:
        logits, targets = logits.detach().float().cpu(), targets.detach().cpu().long()
        predicted = logits.argmax(dim=1)
        index = targets * self.num_classes + predicted
        self.confusion += torch.bincount(index, minlength=self.num_classes**2).view_as(self.confusion)
        self.loss_sum += loss_sum
        if self.num_classes == 2:
            self.scores.append(torch.softmax(logits, dim=1)[:, 1].double())
            self.labels.append(targets)

    def result(self, prefix: str) -> EvaluationResult:
        confusion = all_reduce(self.confusion)
        loss_sum = float(all_reduce(torch.tensor([self.loss_sum], dtype=torch.float64))[0])
        matrix = confusion.numpy()
        total = int(matrix.sum())
        scalars = {f"{prefix}_loss": loss_sum / max(total, 1), **_classification_scores(matrix, prefix)}
        if self.num_classes == 2:
            scores = all_gather_rows(
                torch.cat(self.scores) if self.scores else torch.zeros(0, dtype=torch.float64)
            )
            labels = all_gather_rows(
                torch.cat(self.labels) if self.labels else torch.zeros(0, dtype=torch.int64)
            )
            auc = roc_auc(labels.numpy(), scores.numpy())
            if auc is not None:
                scalars[f"{prefix}_auc"] = auc
        return EvaluationResult(scalars, matrix.tolist())


def _classification_scores(matrix: np.ndarray, prefix: str) -> dict[str, float]:
    """Accuracy and macro precision/recall/F1 over the labels that occur (as scikit-learn averages them)."""
    total = matrix.sum()
    true_counts, predicted_counts = matrix.sum(axis=1), matrix.sum(axis=0)
    hits = np.diag(matrix).astype(np.float64)
    present = (true_counts > 0) | (predicted_counts > 0)
    precision = np.divide(hits, predicted_counts, out=np.zeros_like(hits), where=predicted_counts > 0)
    recall = np.divide(hits, true_counts, out=np.zeros_like(hits), where=true_counts > 0)
    denominator = 2 * hits + (predicted_counts - hits) + (true_counts - hits)
    f1 = np.divide(2 * hits, denominator, out=np.zeros_like(hits), where=denominator > 0)
    if not present.any():
        return {}
    return {
        f"{prefix}_accuracy": float(hits.sum() / total),
        f"{prefix}_precision": float(precision[present].mean()),
        f"{prefix}_recall": float(recall[present].mean()),
        f"{prefix}_f1": float(f1[present].mean()),
    }


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half); None with one class only."""
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based ranks, ties share their mean
    ranks = average_rank[inverse]
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


class RegressionStats:
    """Sums of errors and of targets per output: MSE, MAE and R² (averaged over outputs)."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None  # rows: n, squared error, abs error, y, y², columns: outputs

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss_sum: float) -> None:
        del loss_sum  # the loss is the MSE, computed from the sums
        predicted = outputs.detach().double().cpu().reshape(outputs.shape[0], -1)
        actual = targets.detach().double().cpu().reshape(predicted.shape)
        error = predicted - actual
        batch = torch.stack(
            [
                torch.full((predicted.shape[1],), float(predicted.shape[0]), dtype=torch.float64),
                (error**2).sum(0),
                error.abs().sum(0),
                actual.sum(0),
                (actual**2).sum(0),
            ]
        )
        self.sums = batch if self.sums is None else self.sums + batch

    def result(self, prefix: str) -> EvaluationResult:
        local = self.sums if self.sums is not None else torch.zeros((5, 1), dtype=torch.float64)
        n, sse, sae, sy, syy = all_reduce(local)
        if float(n[0]) == 0:
            return EvaluationResult({})
        mse = float(sse.sum() / (n.sum()))
        sst = syy - sy**2 / n
        r2 = [
            (1.0 - float(e / t)) if t > 0 else (1.0 if e == 0 else 0.0)
            for e, t in zip(sse.tolist(), sst.tolist(), strict=True)
        ]
        return EvaluationResult(
            {
                f"{prefix}_loss": mse,
                f"{prefix}_mse": mse,
                f"{prefix}_mae": float(sae.sum() / n.sum()),
                f"{prefix}_r2": float(np.mean(r2)),
            }
        )


class ReconstructionStats:
    """Mean squared reconstruction error per element."""

    def __init__(self) -> None:
        self.squared_error = 0.0
        self.elements = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss_sum: float) -> None:
        del loss_sum
        error = outputs.detach().double() - targets.detach().double().reshape(outputs.shape)
        self.squared_error += float((error**2).sum())
        self.elements += error.numel()

    def result(self, prefix: str) -> EvaluationResult:
        summed = all_reduce(torch.tensor([self.squared_error, float(self.elements)], dtype=torch.float64))
        if summed[1] == 0:
            return EvaluationResult({})
        value = float(summed[0] / summed[1])
        return EvaluationResult({f"{prefix}_loss": value, f"{prefix}_reconstruction_loss": value})


def evaluation_stats(info: DataInfo) -> ClassificationStats | RegressionStats | ReconstructionStats:
    if info.task == "classification":
        return ClassificationStats(int(info.num_classes or 2))
    if info.task == "regression":
        return RegressionStats()
    return ReconstructionStats()


# --- best value and early stopping ------------------------------------------------------------------------


@dataclass
class Tracker:
    """The best value of one metric so far, and how many epochs have passed without improving it."""

    metric: str
    mode: str  # min | max
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0

    def update(self, value: float | None, epoch: int) -> bool:
        """Record an epoch's value; True when it is a new best."""
        if value is None or not math.isfinite(value):
            self.epochs_without_improvement += 1
            return False
        if self.best is None or self._better(value, self.best):
            self.best, self.best_epoch, self.epochs_without_improvement = value, epoch, 0
            return True
        self.epochs_without_improvement += 1
        return False

    def _better(self, value: float, best: float) -> bool:
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta

    def score(self, value: float | None) -> float:
        """A finite number where larger is better, for ranking checkpoints (a missing value ranks last)."""
        if value is None or not math.isfinite(value):
            return WORST_SCORE
        return value if self.mode == "max" else -value

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "epochs_without_improvement": self.epochs_without_improvement,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
