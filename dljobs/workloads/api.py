"""The helper API for custom code (`workload.entrypoint: train.py:train_loop`).

dljobs runs `train_loop(config)` on every worker inside a TorchTrainer; `config` holds the workload's
`params` and, under "spec", the resolved job spec. Inside it:

    from dljobs.workloads import api

    model = api.prepare_model(model)                 # DDP across the workers (and to the device)
    loader = api.prepare_data_loader(loader)         # a distributed sampler, batches on the device
    start = 0
    if (directory := api.get_checkpoint()) is not None:
        start = load_my_state(directory)             # the run was restarted: continue
    for epoch in range(start, epochs):
        ...
        with tempfile.TemporaryDirectory() as tmp:
            save_my_state(tmp)
            api.report({"epoch": epoch + 1, "val_accuracy": acc}, checkpoint_dir=tmp)
    torch.save(model.state_dict(), api.artifact_dir() / "model.pt")   # uploaded at the end

`report` must be called by every worker the same number of times (it is a synchronisation point); rank 0's
metrics go to the controller live and into the job's metrics.jsonl and card.json.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dljobs.spec.job import JobSpec
from dljobs.workloads.reporting import Reporter


@dataclass
class CustomSession:
    """What the helpers need on one worker; set up by dljobs around the user's train function."""

    spec: JobSpec
    rank: int
    reporter: Reporter
    artifacts: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dljobs-artifacts-")))
    history: list[dict[str, Any]] = field(default_factory=list)
    reports: int = 0


_session: CustomSession | None = None


def _current() -> CustomSession:
    if _session is None:
        raise RuntimeError("dljobs.workloads.api works inside a dljobs job's train function only")
    return _session


def _activate(session: CustomSession | None) -> None:
    global _session
    _session = session


def report(metrics: dict[str, Any], checkpoint_dir: str | Path | None = None) -> None:
    """Report metrics (and optionally a checkpoint: a directory whose files are saved as one).

    Every worker must call it, the same number of times; with a checkpoint, each worker's files are merged
    into one checkpoint directory (name them per rank if they differ).
    """
    import ray.train

    session = _current()
    session.reports += 1
    checkpoint = ray.train.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
    if session.rank == 0:
        step = int(metrics.get("step", session.reports))
        epoch = metrics.get("epoch")
        session.history.append({"step": step, **metrics})
        session.reporter.metrics(metrics, step=step, epoch=int(epoch) if isinstance(epoch, int) else None)
        session.reporter.before_ray_report()
    ray.train.report(dict(metrics), checkpoint=checkpoint)


def get_checkpoint() -> Path | None:
    """A local directory with the latest reported checkpoint, or None when the run starts fresh."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    return Path(checkpoint.to_directory()) if checkpoint is not None else None


def artifact_dir() -> Path:
    """A local directory whose files rank 0 uploads under the job's artifacts (outputs/) at the end."""
    return _current().artifacts


def get_dataset_shard(name: str = "train") -> Any:
    """This worker's shard of a Ray Data dataset handed to the trainer (passes through to Ray Train)."""
    import ray.train

    return ray.train.get_dataset_shard(name)


def world_rank() -> int:
    import ray.train

    return ray.train.get_context().get_world_rank()


def world_size() -> int:
    import ray.train

    return ray.train.get_context().get_world_size()


def local_rank() -> int:
    import ray.train

    return ray.train.get_context().get_local_rank()


def device() -> Any:
    """This worker's torch device (a GPU when the job asks for them)."""
    import ray.train.torch

    return ray.train.torch.get_device()


def prepare_model(model: Any) -> Any:
    """Move to the device and wrap in DistributedDataParallel when there is more than one worker."""
    import ray.train.torch

    return ray.train.torch.prepare_model(model)


def prepare_data_loader(loader: Any) -> Any:
    """Add a distributed sampler (more than one worker) and move batches to the device."""
    import ray.train.torch

    return ray.train.torch.prepare_data_loader(loader)


def job_spec() -> JobSpec:
    """The resolved job spec (with training.seed filled in)."""
    return _current().spec


def load_job_data(seed: int | None = None) -> Any:
    """The job's `data:` section loaded as the built-in workloads load it: PreparedData with train, val and
    test TensorDatasets and their DataInfo."""
    from dljobs.workloads.data import load_data

    spec = _current().spec
    chosen = (spec.training.seed or 0) if seed is None else seed
    return load_data(spec, seed=chosen)
