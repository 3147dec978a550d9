"""The local Ray head: a head that exits while starting is started again."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest

from dljobs.controller import ray_head
from dljobs.controller.ray_head import LocalRayHead


def test_a_head_that_exits_while_starting_is_started_again_on_new_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as held:  # a port something else listens on
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        picks = itertools.count()
        pick = ray_head.free_port
        # the first start's second port (its dashboard's) is the taken one: `ray start` exits
        monkeypatch.setattr(ray_head, "free_port", lambda: taken if next(picks) == 1 else pick())
        head = LocalRayHead(num_cpus=1, log_file=tmp_path / "head.log")
        try:
            head.start()
            assert head.dashboard_port != taken
            assert head.process is not None and head.process.poll() is None
        finally:
            head.stop()
    log = (tmp_path / "head.log").read_text()
    assert f"Failed to bind to 127.0.0.1:{taken}" in log  # the first attempt met the taken port
