"""What a checkpoint holds, and which one is best.

A checkpoint directory (one per report, merged from every rank by Ray Train):

    model.pt       the model's state dict (rank 0): what the artifact step exports
    training.pt    optimizers, schedules, scalers, epoch, trackers, history (rank 0)
    rank-N.pt      rank N's random generators (python, numpy, torch, augmentation, GAN noise), its progress
                   inside the epoch (batches, samples, loss sums), its node and a digest of its weights
    meta.json      epoch, batches done in the epoch, and the metrics reported with it

Checkpoints are ranked by the `checkpoint_score` metric (the best metric, signed so larger is better):
Ray Train keeps `training.keep_checkpoints` of the best and always the latest.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

MODEL_FILE = "model.pt"
TRAINING_FILE = "training.pt"
META_FILE = "meta.json"
SCORE = "checkpoint_score"


def rank_file(rank: int) -> str:
    return f"rank-{rank}.pt"


def checkpoint_dir_name(epoch: int, batches_done: int = 0) -> str:
    """`epoch-000003` after an epoch; `epoch-000003-batch-00000042` inside one (preemption)."""
    name = f"epoch-{epoch:06d}"
    return f"{name}-batch-{batches_done:08d}" if batches_done else name


def write_checkpoint(
    directory: Path,
    *,
    rank: int,
    model_state: dict[str, Any] | None,
    training_state: dict[str, Any] | None,
    rank_state: dict[str, Any],
    meta: dict[str, Any] | None,
) -> None:
    """Rank 0 writes model, training state and meta; every rank writes its own generators."""
    directory.mkdir(parents=True, exist_ok=True)
    if model_state is not None:
        torch.save(model_state, directory / MODEL_FILE)
    if training_state is not None:
        torch.save(training_state, directory / TRAINING_FILE)
    if meta is not None:
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    torch.save(rank_state, directory / rank_file(rank))


def read_checkpoint(
    directory: Path, rank: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """(model state, training state, this rank's generators or None when the world size changed)."""
    model_state = load_torch_file(directory / MODEL_FILE)
    training_state = load_torch_file(directory / TRAINING_FILE)
    own = directory / rank_file(rank)
    return model_state, training_state, load_torch_file(own) if own.exists() else None


def load_torch_file(path: Path) -> Any:
    # Our own files: they hold numpy generator state and python tuples, so weights_only is off.
    return torch.load(path, map_location="cpu", weights_only=False)


def load_state_dict_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """A state dict from bytes written by torch.save (tensors only: safe for files from elsewhere)."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def parameters_sha256(module: torch.nn.Module) -> str:
    """A digest of a module's weights and buffers: equal on every rank of a data-parallel run."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def best_of(reported: Iterable[tuple[Any, dict[str, Any]]]) -> tuple[Any, dict[str, Any]] | None:
    """The (checkpoint, metrics) pair with the highest score; the later one on a tie."""
    best: tuple[Any, dict[str, Any]] | None = None
    for checkpoint, metrics in reported:
        score = metrics.get(SCORE)
        if score is None:
            continue
        if best is None or (score, metrics.get("epoch", 0)) >= (best[1][SCORE], best[1].get("epoch", 0)):
            best = (checkpoint, metrics)
    return best


def read_checkpoint_file(checkpoint: Any, name: str) -> bytes:
    """One file of a Ray Train checkpoint, read straight from its storage (no full download)."""
    with checkpoint.filesystem.open_input_stream(f"{checkpoint.path}/{name}") as stream:
        return stream.read()
