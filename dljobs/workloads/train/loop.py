"""The per-worker train function of the built-in models (`workload.model`), run by TorchTrainer.

Per worker: seed, load the data, build the model (transfer weights and freeze layers before DDP), wrap it
with Ray Train's DDP helpers, resume from `ray.train.get_checkpoint()` if there is one, then train epoch by
epoch: validate, step the per-epoch schedules, track the best metric and early stopping, report metrics
(and every `checkpoint_every` epochs, on a new best, at the end and before a preemption a checkpoint) with
`ray.train.report`. At the end the best checkpoint's weights are evaluated on the test split. Rank 0 sends
live metrics to the controller, prints one progress line per epoch and returns the run's summary.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.train.torch
import torch
from torch import nn

from dljobs.spec.base import resolve_mode
from dljobs.spec.job import JobSpec
from dljobs.storage.base import KeyNotFound
from dljobs.workloads.artifacts import read_url
from dljobs.workloads.data.augment import build_augmenter
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.errors import WorkloadError
from dljobs.workloads.models import build_model, freeze, load_pretrained
from dljobs.workloads.reporting import Reporter
from dljobs.workloads.train import checkpoints as ckpt
from dljobs.workloads.train.context import RunContext, from_loop_config
from dljobs.workloads.train.engine import EpochProgress, GANEngine, Optimization, SupervisedEngine
from dljobs.workloads.train.loaders import InMemoryFeed, StreamingFeed
from dljobs.workloads.train.metrics import Tracker, all_reduce, check_monitored
from dljobs.workloads.train.optim import LearningRateSchedule, build_optimizer
from dljobs.workloads.train.precision import Precision
from dljobs.workloads.train.preemption import PreemptionWatch, WorkerStopping, install_on_worker
from dljobs.workloads.train.seeding import derive_seed, rng_state, seed_everything, set_rng_state
from dljobs.workloads.train.tensorboard import TensorBoardLog

DATA_KEY = "data"  # in the loop config: an ObjectRef to the driver's PreparedData, or the streaming info
STREAMS_KEY = "streams"  # streaming jobs: the names of the Ray Data datasets handed to the trainer


def data_feed(
    config: dict[str, Any], spec: JobSpec, rank: int, world: int, seed: int, pin_memory: bool
) -> Any:
    """This worker's batches: the driver's in-memory splits (through the object store) or Ray Data shards."""
    shuffle = bool(spec.data and spec.data.shuffle)
    batch = spec.training.batch_size
    if STREAMS_KEY in config:
        return StreamingFeed(
            config[DATA_KEY], config[STREAMS_KEY], batch_size=batch, world=world, seed=seed, shuffle=shuffle
        )
    prepared = ray.get(config[DATA_KEY])
    return InMemoryFeed(
        prepared, batch_size=batch, rank=rank, world=world, seed=seed, shuffle=shuffle, pin_memory=pin_memory
    )


def training_model(spec: JobSpec, info: DataInfo, context: RunContext) -> nn.Module:
    """The built-in model for this data, with `init_from`'s weights loaded (a new head when the classes
    differ) and the `freeze` layers fixed: before DDP wraps it. The driver builds it once to check."""
    model = build_model(spec.workload, info)
    if context.init_from_url:
        try:
            data = read_url(context.init_from_url, context.s3_endpoint_url)
        except KeyNotFound:
            raise WorkloadError(
                f"no weights at {context.init_from_url}", field="workload.init_from"
            ) from None
        classes = info.num_classes if info.task == "classification" else None
        load_pretrained(model, ckpt.load_state_dict_bytes(data), new_num_classes=classes)
    if spec.workload.freeze:
        freeze(model, spec.workload.freeze)
    return model


class BuiltinTraining:
    """One worker's view of a built-in model's training run."""

    def __init__(self, spec: JobSpec, run: RunContext, config: dict[str, Any]) -> None:
        context = ray.train.get_context()
        self.spec, self.context = spec, run
        self.training = spec.training
        self.rank, self.world = context.get_world_rank(), context.get_world_size()
        self.seed = spec.training.seed if spec.training.seed is not None else 0
        torch.set_num_threads(max(1, int(spec.resources.cpus_per_worker)))
        seed_everything(self.seed)  # identical initial weights on every rank
        self.precision = Precision(ray.train.torch.get_device(), self.training.precision)
        self.feed = data_feed(config, spec, self.rank, self.world, self.seed, self.precision.pin_memory)
        self.info: DataInfo = self.feed.info
        self.monitored = check_monitored(
            self.training, self.info, has_validation=self.feed.validation is not None
        )
        self.core = training_model(spec, self.info, run)
        seed_everything(derive_seed(self.seed, "rank", self.rank))  # each rank's own random streams
        augment = spec.data.augment if spec.data else None
        self.augmenter = build_augmenter(
            augment, self.info, seed=derive_seed(self.seed, "augment", self.rank)
        )
        self.engine = self._build_engine()
        best_mode = resolve_mode(self.monitored.best, self.training.best_mode)
        self.best = Tracker(self.monitored.best, best_mode)
        stopping = self.training.early_stopping
        self.patience = stopping.patience if stopping else 0
        self.early = (
            Tracker(
                self.monitored.early_stopping or stopping.metric,
                resolve_mode(self.monitored.early_stopping or stopping.metric, stopping.mode),
                min_delta=stopping.min_delta,
            )
            if stopping
            else None
        )
        self.epoch = 0  # epochs completed
        self.progress = EpochProgress()
        self.history: list[dict[str, Any]] = []
        self.stopped_early = False
        self.val_confusion: list[list[int]] | None = None
        self.resumed_from: dict[str, int] | None = None
        self.reporter = Reporter.from_context(
            run.api_url, run.job_id, run.job_token, rank=self.rank, trial=run.trial
        )
        self.board = TensorBoardLog.for_rank(self.training.tensorboard, run, self.rank)
        self.watch = PreemptionWatch()

    # -- setup ----------------------------------------------------------------------------------------------

    def _steps_per_epoch(self) -> int:
        return math.ceil(self.feed.steps_estimate / self.training.grad_accumulation)

    def _optimization(self, module: nn.Module, lr: float | None = None) -> Optimization:
        optimizer = build_optimizer(module, self.training.optimizer, lr)
        schedule = LearningRateSchedule(
            optimizer,
            self.training.schedule,
            total_steps=self._steps_per_epoch() * self.training.epochs,
            monitor=self.monitored.plateau,
        )
        parameters = [p for p in module.parameters() if p.requires_grad]
        return Optimization(optimizer, schedule, self.precision.grad_scaler(), parameters)

    def _build_engine(self) -> SupervisedEngine | GANEngine:
        prepare = ray.train.torch.prepare_model
        if self.info.task == "generation":
            gan = self.core.to(self.precision.device)
            generator, discriminator = prepare(gan.generator), prepare(gan.discriminator)
            params = self.spec.workload.params
            d_lr = params.get("discriminator_lr") or self.training.optimizer.lr
            noise = torch.Generator().manual_seed(derive_seed(self.seed, "noise", self.rank))
            return GANEngine(
                generator,
                discriminator,
                gan,
                self.training,
                self.precision,
                self._optimization(gan.generator),
                self._optimization(gan.discriminator, d_lr),
                noise=noise,
                real_label=1.0 - float(params.get("label_smoothing", 0.0)),
                augmenter=self.augmenter,
            )
        model = prepare(self.core)
        return SupervisedEngine(
            model,
            self.core,
            self.info,
            self.training,
            self.precision,
            self._optimization(self.core),
            self.augmenter,
        )

    # -- state -----------------------------------------------------------------------------------------------

    def training_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "global_step": self.engine.global_step,
            "optimizations": [o.state_dict() for o in self.engine.optimizations],
            "best": self.best.state_dict(),
            "early": self.early.state_dict() if self.early else None,
            "history": self.history,
            "stopped_early": self.stopped_early,
            "val_confusion": self.val_confusion,
            "world_size": self.world,
        }

    def rank_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "rng": rng_state(),
            "progress": self.progress.state_dict(),  # this rank's batches, samples and loss sums so far
            "node_id": ray.get_runtime_context().get_node_id(),
            "parameters_sha256": ckpt.parameters_sha256(self.core),
        }
        if self.augmenter is not None:
            state["augmenter"] = self.augmenter.state_dict()
        if isinstance(self.engine, GANEngine):
            state["noise"] = self.engine.noise.get_state()
        return state

    def restore(self) -> bool:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return False
        with checkpoint.as_directory() as directory:
            model_state, training, own = ckpt.read_checkpoint(Path(directory), self.rank)
        self.core.load_state_dict(model_state)
        self.epoch = int(training["epoch"])
        self.engine.global_step = int(training["global_step"])
        for optimization, state in zip(self.engine.optimizations, training["optimizations"], strict=True):
            optimization.load_state_dict(state)
        self.best.load_state_dict(training["best"])
        if self.early is not None and training["early"] is not None:
            self.early.load_state_dict(training["early"])
        self.history = list(training["history"])
        self.stopped_early = bool(training["stopped_early"])
        self.val_confusion = training["val_confusion"]
        if own is not None and training["world_size"] == self.world:
            set_rng_state(own["rng"])
            if self.feed.resumable:  # a stream cannot replay part of an epoch: it starts the epoch again
                self.progress = EpochProgress.from_state(own["progress"])
            if self.augmenter is not None and "augmenter" in own:
                self.augmenter.load_state_dict(own["augmenter"])
            if isinstance(self.engine, GANEngine) and "noise" in own:
                self.engine.noise.set_state(own["noise"])
        else:  # another world size: fresh streams fixed by the seed and the epoch, which starts again
            seed_everything(derive_seed(self.seed, "rank", self.rank, "epoch", self.epoch))
        self.resumed_from = {"epoch": self.epoch + 1, "batch": self.progress.batches_done}
        return True

    def report(self, metrics: dict[str, Any], *, checkpoint: bool) -> None:
        """ray.train.report on every rank; with a checkpoint, each rank contributes its files."""
        if not checkpoint:
            ray.train.report(metrics)
            return
        name = ckpt.checkpoint_dir_name(
            self.epoch + (0 if self.progress.batches_done == 0 else 1), self.progress.batches_done
        )
        with tempfile.TemporaryDirectory(prefix="dljobs-ckpt-") as tmp:
            leader = self.rank == 0
            ckpt.write_checkpoint(
                Path(tmp),
                rank=self.rank,
                model_state=self.core.state_dict() if leader else None,
                training_state=self.training_state() if leader else None,
                rank_state=self.rank_state(),
                meta={"epoch": self.epoch, "batches_done": self.progress.batches_done, "metrics": metrics}
                if leader
                else None,
            )
            ray.train.report(
                metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp), checkpoint_dir_name=name
            )

    # -- the run ---------------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any] | None:
        resumed = self.restore()
        if resumed and self.rank == 0:
            print(
                f"dljobs: resumed at epoch {self.epoch + 1}, batch {self.progress.batches_done}", flush=True
            )
            if self.history:  # the points of the last epoch may have died in a killed worker's buffer
                last = self.history[-1]
                self.reporter.metrics(last, step=int(last["step"]), epoch=int(last["epoch"]))
        install_on_worker()
        trained: list[int] = []
        try:
            while self.epoch < self.training.epochs and not self.stopped_early:
                trained.append(self.epoch + 1)
                self._one_epoch()
            test = self._finish()
        finally:
            self.reporter.close()
        if self.rank != 0:
            return None
        return {
            "history": self.history,
            "final_metrics": self.history[-1] if self.history else {},
            "test_metrics": test.scalars if test else {},
            "test_confusion_matrix": test.confusion_matrix if test else None,
            "val_confusion_matrix": self.val_confusion,
            "best": {"metric": self.best.metric, "value": self.best.best, "epoch": self.best.best_epoch},
            "stopped_early": self.stopped_early,
            "epochs_trained": trained,
            "resumed": resumed,
            "resumed_from": self.resumed_from,
            "global_step": self.engine.global_step,
        }

    def _one_epoch(self) -> None:
        started = time.perf_counter()
        batches = self.feed.train_batches(self.epoch, self.progress.batches_done)
        self.progress = self.engine.train_epoch(
            batches,
            num_batches=self.feed.batches_per_epoch,
            progress=self.progress,
            interrupt=self.watch,
        )
        if not self.progress.completed:
            self._stop_for_preemption()
        metrics: dict[str, Any] = {name: mean.reduced() for name, mean in self.progress.losses.items()}
        samples, seconds = self._throughput()
        if self.feed.validation is not None:
            validation = self.engine.evaluate(self.feed.validation, "val")
            metrics.update(validation.scalars)
            self.val_confusion = validation.confusion_matrix
        metrics["samples_per_second"] = samples / seconds if seconds > 0 else 0.0
        metrics["epoch_time"] = float(all_reduce(torch.tensor([time.perf_counter() - started]), op="max")[0])
        metrics["lr"] = self.engine.optimizations[0].schedule.current_lr
        for optimization in self.engine.optimizations:
            optimization.schedule.after_epoch(metrics)
        self.epoch += 1
        self.progress = EpochProgress()
        improved = self.best.update(metrics.get(self.best.metric), self.epoch)
        if self.early is not None:
            self.early.update(metrics.get(self.early.metric), self.epoch)
            self.stopped_early = self.early.epochs_without_improvement >= self.patience
        preempting = ray.train.get_preemption_info() is not None
        last = self.epoch >= self.training.epochs or self.stopped_early
        save = improved or last or preempting or self.epoch % self.training.checkpoint_every == 0
        record = {
            "epoch": self.epoch,
            "step": self.engine.global_step,
            **{k: v for k, v in metrics.items() if v is not None},
        }
        self.history.append(record)
        reported = {**record, ckpt.SCORE: self.best.score(metrics.get(self.best.metric))}
        if self.rank == 0:
            self.reporter.metrics(record, step=self.engine.global_step, epoch=self.epoch)
            self.reporter.before_ray_report()
        self.report(reported, checkpoint=save)
        if self.rank == 0:
            if self.board is not None:
                self.board.epoch(record)
            print(progress_line(record, self.training.epochs), flush=True)
            if self.stopped_early and self.early is not None:
                stalled = f"{self.early.metric} has not improved for {self.patience} epochs"
                print(f"dljobs: early stopping: {stalled}", flush=True)

    def _throughput(self) -> tuple[float, float]:
        totals = all_reduce(torch.tensor([float(self.progress.samples)], dtype=torch.float64))
        slowest = all_reduce(torch.tensor([self.progress.seconds], dtype=torch.float64), op="max")
        steps = max(1, self._steps_per_epoch())
        self.watch.calibrate(float(slowest[0]) / steps)
        return float(totals[0]), float(slowest[0])

    def _stop_for_preemption(self) -> None:
        """Every rank checkpoints at this step; the signalled one exits, the others end with an error."""
        metrics = {"epoch": self.epoch, "step": self.engine.global_step, ckpt.SCORE: self.best.score(None)}
        self.report(metrics, checkpoint=True)
        # The controller collects a report when it next polls this worker: wait until the checkpoint is
        # committed, or the exit below would take it along.
        ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED)
        if self.rank == 0:
            print(
                f"dljobs: stopping for preemption: checkpoint at epoch {self.epoch + 1}, "
                f"batch {self.progress.batches_done}",
                flush=True,
            )
        self.watch.exit_signalled()
        raise WorkerStopping(
            f"a worker is stopping; checkpoint saved at epoch {self.epoch + 1}, "
            f"batch {self.progress.batches_done}"
        )

    def _finish(self) -> Any:
        """The best checkpoint's weights (unless they are the current ones) on the test split."""
        if self.board is not None:
            self.board.close()
        self._load_best_weights()
        if self.feed.test is None:
            return None
        return self.engine.evaluate(self.feed.test, "test")

    def _load_best_weights(self) -> None:
        if self.best.best_epoch is None or self.best.best_epoch == self.epoch:
            return
        reported = ray.train.get_all_reported_checkpoints()
        chosen = ckpt.best_of((r.checkpoint, r.metrics) for r in reported)
        if chosen is None or chosen[1].get("epoch") == self.epoch:
            return
        state = ckpt.load_state_dict_bytes(ckpt.read_checkpoint_file(chosen[0], ckpt.MODEL_FILE))
        self.core.load_state_dict(state)


def progress_line(record: dict[str, Any], epochs: int) -> str:
    shown = [
        f"{name}={value:.4g}"
        for name, value in record.items()
        if name not in ("epoch", "step", "lr", "samples_per_second", "epoch_time")
        and isinstance(value, float)
    ]
    return (
        f"epoch {record['epoch']}/{epochs} "
        + " ".join(shown)
        + f" ({record.get('epoch_time', 0.0):.1f}s, {record.get('samples_per_second', 0.0):.0f} samples/s)"
    )


def train_builtin(config: dict[str, Any]) -> dict[str, Any] | None:
    """TorchTrainer's train_loop_per_worker for `workload.model` jobs."""
    spec, run = from_loop_config(config)
    try:
        training = BuiltinTraining(spec, run, config)
    except WorkloadError as exc:  # a user error in setup is the same on every rank: report, do not retry
        return {"error": str(exc)}
    return training.run()
