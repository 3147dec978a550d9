"""TensorBoard event files for `training.tensorboard: true`: written by rank 0, one scalar per metric and
epoch, and uploaded beside the job's artifacts (`tensorboard/`) after every epoch, so a killed or retried
job keeps what it logged. `tensorboard --logdir` reads them from the download or straight from S3."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from dljobs.storage import open_store
from dljobs.workloads.train.context import RunContext

PREFIX = "tensorboard"


class TensorBoardLog:
    def __init__(self, context: RunContext) -> None:
        from tensorboardX import SummaryWriter

        self.store = open_store(context.artifacts_url or "", endpoint_url=context.s3_endpoint_url)
        self.local = Path(tempfile.mkdtemp(prefix="dljobs-tb-"))
        self.writer = SummaryWriter(logdir=str(self.local), filename_suffix=f".attempt{context.attempt}")

    @classmethod
    def for_rank(cls, enabled: bool, context: RunContext, rank: int) -> TensorBoardLog | None:
        return cls(context) if enabled and rank == 0 and context.artifacts_url else None

    def epoch(self, record: dict[str, Any]) -> None:
        step = int(record["step"])
        for name, value in record.items():
            if name not in ("epoch", "step") and isinstance(value, int | float):
                self.writer.add_scalar(name, value, step)
        self.writer.flush()
        for file in self.local.iterdir():
            self.store.put_file(f"{PREFIX}/{file.name}", file)

    def close(self) -> None:
        self.writer.close()
