"""A local Ray head of a test's own (token auth, free ports, its own temp dir), stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dljobs.controller.ray_head import LocalRayHead
from tests.support.ports import restartable_port


@contextmanager
def own_ray_head(
    tmp_path_factory: pytest.TempPathFactory, num_cpus: int = 2, restartable: bool = False
) -> Iterator[LocalRayHead]:
    """`restartable`: its address and dashboard port can be bound again after `stop()` (see ports)."""
    head = LocalRayHead(num_cpus=num_cpus, log_file=tmp_path_factory.mktemp("ray") / "head.log")
    if restartable:
        head.port, head.dashboard_port = restartable_port(), restartable_port()
    head.start()
    try:
        yield head
    finally:
        head.stop()
