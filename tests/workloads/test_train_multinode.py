"""Two workers on two nodes of a local Ray cluster (its own head, so the session head keeps its size):
placement spread puts them on different nodes and every rank ends with the same parameters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from dljobs.controller.ray_head import LocalRayHead
from dljobs.processes import stop_popen_group
from dljobs.spec import runtime
from tests.workloads.test_runner_reporting import HANG_GUARD_S

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]


def alive_nodes(head: LocalRayHead) -> int:
    response = httpx.get(
        f"{head.dashboard_url}/api/v0/nodes",
        params={"detail": "1"},
        headers={"Authorization": f"Bearer {head.token}"},
        timeout=10,
    )
    nodes = response.json().get("data", {}).get("result", {}).get("result", [])
    return sum(1 for node in nodes if node.get("state") == "ALIVE")


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRayHead]:
    logs = tmp_path_factory.mktemp("two-nodes")
    head = LocalRayHead(num_cpus=1, log_file=logs / "head.log").start()
    node = head.add_node(num_cpus=1, log_file=logs / "node.log")
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while alive_nodes(head) < 2:
            assert time.monotonic() < deadline, "the second node did not join"
            time.sleep(0.5)
        yield head
    finally:
        stop_popen_group(node)
        head.stop()


def test_spread_workers_train_on_two_nodes_and_agree(two_node_cluster: LocalRayHead, tmp_path: Path) -> None:
    spec = {
        "name": "two-nodes",
        "workload": {"model": "mlp", "params": {"hidden": [64]}},
        "data": {"source": "builtin://digits"},
        "training": {"epochs": 2, "seed": 2},
        "resources": {"workers": 2, "cpus_per_worker": 1, "placement": "strict_spread"},
    }
    artifacts = tmp_path / "jobs" / "41"
    env = {
        **os.environ,
        **two_node_cluster.env(),
        "PYTHONPATH": str(ROOT),
        "RAY_ADDRESS": two_node_cluster.gcs_address,
        runtime.ENV_SPEC: json.dumps(spec),
        runtime.ENV_JOB_ID: "41",
        runtime.ENV_ARTIFACTS_URL: artifacts.as_uri(),
    }
    result = subprocess.run(
        [sys.executable, "-m", "dljobs.workloads.runner"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    final = artifacts / "checkpoints" / "dljobs-job-41" / "epoch-000002"
    ranks = [torch.load(final / f"rank-{r}.pt", weights_only=False) for r in (0, 1)]
    assert ranks[0]["node_id"] != ranks[1]["node_id"]  # one worker per node
    assert ranks[0]["parameters_sha256"] == ranks[1]["parameters_sha256"]  # DDP kept them identical
    card = json.loads((artifacts / "card.json").read_text())
    assert card["metrics"]["test"]["test_accuracy"] > 0.5
