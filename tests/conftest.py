"""Session-wide real components: a Ray head with token auth, PostgreSQL databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One local Ray head for the session (token auth, free ports, its own temp dir)."""
    from dljobs.controller.ray_head import LocalRayHead

    log = tmp_path_factory.mktemp("ray") / "head.log"
    head = LocalRayHead(num_cpus=int(os.environ.get("DLJOBS_TEST_RAY_CPUS", "2")), log_file=log).start()
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[object]:
    """One SeaweedFS S3 server for the session (free ports, one identity). Use `create_bucket()` per test."""
    from tests.support.s3 import SeaweedS3

    server = SeaweedS3().start()
    try:
        yield server
    finally:
        server.cleanup()
