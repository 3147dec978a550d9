"""What feeds one worker batches: in-memory splits through DataLoaders, or Ray Data shards (streaming).

The training sampler is Torch's DistributedSampler (seeded with the job's seed, reshuffled per epoch with
`set_epoch`), so the order of every epoch is fixed by (seed, epoch, world size); a resumed run skips the
batches it already trained. Evaluation shards take every world-th example without DistributedSampler's
padding, so no example is counted twice in a metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset

from dljobs.workloads.train.seeding import derive_seed

EVAL_BATCH_SIZE = 512
STREAM_SHUFFLE_BUFFER = 10_000  # rows shuffled locally on each worker, per epoch


class SkippingSampler(Sampler[int]):
    """A DistributedSampler whose first `skip` batches are left out (resuming inside an epoch)."""

    def __init__(self, sampler: DistributedSampler[Any], batch_size: int) -> None:
        self.sampler, self.batch_size, self.skip = sampler, batch_size, 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.sampler.set_epoch(epoch)
        self.skip = skip_batches

    def __iter__(self) -> Iterator[int]:
        indices = list(self.sampler)
        return iter(indices[self.skip * self.batch_size :])

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip * self.batch_size)


def train_loader(
    dataset: Dataset[Any],
    *,
    batch_size: int,
    rank: int,
    world: int,
    seed: int,
    shuffle: bool,
    pin_memory: bool,
) -> tuple[DataLoader[Any], SkippingSampler]:
    distributed = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
    sampler = SkippingSampler(distributed, batch_size)
    # A last batch of a single example breaks batch norm in training mode: leave it out.
    drop_last = len(distributed) % batch_size == 1 and len(distributed) > 1
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=_own_generator(seed),
    )
    return loader, sampler


def shard(dataset: Dataset[Any], rank: int, world: int) -> Dataset[Any]:
    """Every world-th example from `rank`: evaluation shards, no example counted twice."""
    size = len(dataset)  # type: ignore[arg-type]
    return Subset(dataset, range(rank, size, world)) if world > 1 else dataset


def eval_loader(
    dataset: Dataset[Any] | None, *, batch_size: int, rank: int, world: int, pin_memory: bool
) -> DataLoader[Any] | None:
    if dataset is None:
        return None
    return DataLoader(
        shard(dataset, rank, world),
        batch_size=max(EVAL_BATCH_SIZE, batch_size),
        shuffle=False,
        pin_memory=pin_memory,
        generator=_own_generator(0),
    )


def _own_generator(seed: int) -> torch.Generator:
    """Each iterator a DataLoader starts draws a seed from its generator: with its own, that draw leaves the
    global random state (dropout, augmentation) alone, so resuming inside an epoch replays it exactly."""
    return torch.Generator().manual_seed(seed)


class InMemoryFeed:
    """Batches of in-memory splits (PreparedData): exact, resumable inside an epoch."""

    resumable = True

    def __init__(
        self,
        prepared: Any,
        *,
        batch_size: int,
        rank: int,
        world: int,
        seed: int,
        shuffle: bool,
        pin_memory: bool,
    ) -> None:
        self.info = prepared.info
        self.loader, self.sampler = train_loader(
            prepared.train,
            batch_size=batch_size,
            rank=rank,
            world=world,
            seed=seed,
            shuffle=shuffle,
            pin_memory=pin_memory,
        )
        self.batches_per_epoch: int | None = len(self.loader)
        self.steps_estimate = len(self.loader)
        common = {"batch_size": batch_size, "rank": rank, "world": world, "pin_memory": pin_memory}
        self.validation = eval_loader(prepared.val, **common)
        self.test = eval_loader(prepared.test, **common)

    def train_batches(self, epoch: int, skip_batches: int) -> Iterable[Any]:
        self.sampler.set_epoch(epoch, skip_batches)
        return self.loader


class StreamingFeed:
    """Batches of this worker's shards of Ray Data datasets (`data.streaming`). A stream cannot replay part of
    an epoch, so a run resumed inside an epoch starts that epoch again."""

    resumable = False

    def __init__(
        self, info: Any, splits: Iterable[str], *, batch_size: int, world: int, seed: int, shuffle: bool
    ) -> None:
        self.info, self.splits = info, set(splits)
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.batches_per_epoch = None
        self.steps_estimate = max(1, math.ceil(info.num_train / world / batch_size))
        self.validation = self._split("validation")
        self.test = self._split("test")

    def _batches(self, name: str, seed: int | None, batch_size: int) -> Iterable[Any]:
        import ray.train

        from dljobs.workloads.data.streaming import iter_batches

        shuffle_buffer = STREAM_SHUFFLE_BUFFER if seed is not None else None
        return iter_batches(
            ray.train.get_dataset_shard(name),
            self.info,
            batch_size=batch_size,
            shuffle_buffer=shuffle_buffer,
            seed=seed,
        )

    def _split(self, name: str) -> Iterable[Any] | None:
        if name not in self.splits:
            return None
        return _Reiterable(lambda: self._batches(name, None, max(EVAL_BATCH_SIZE, self.batch_size)))

    def train_batches(self, epoch: int, skip_batches: int) -> Iterable[Any]:
        del skip_batches
        seed = derive_seed(self.seed, "stream", epoch) if self.shuffle else None
        return self._batches("train", seed, self.batch_size)


class _Reiterable:
    """Iterable more than once: each pass asks for a fresh iterator."""

    def __init__(self, make: Any) -> None:
        self.make = make

    def __iter__(self) -> Iterator[Any]:
        return iter(self.make())
