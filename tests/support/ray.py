"""A local Ray head of a test's own (token auth, free ports, its own temp dir), stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dljobs.controller.ray_head import LocalRayHead


@contextmanager
def own_ray_head(tmp_path_factory: pytest.TempPathFactory, num_cpus: int = 2) -> Iterator[LocalRayHead]:
    head = LocalRayHead(num_cpus=num_cpus, log_file=tmp_path_factory.mktemp("ray") / "head.log").start()
    try:
        yield head
    finally:
        head.stop()
