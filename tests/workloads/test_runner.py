"""The runner as the controller runs it: `python -m dljobs.workloads.runner` with the dljobs env, directly or
as a Ray job submitted over the head's REST API. User mistakes end in ONE `dljobs-error:` line and exit 1."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dljobs.spec import runtime
from dljobs.spec.loading import load_spec_file
from dljobs.workloads.runner import ERROR_PREFIX, EXIT_USER
from tests.workloads.test_runner_reporting import recording_server

ROOT = Path(__file__).resolve().parents[2]


def job_env(spec: dict[str, Any], job_id: str, artifacts: Path | None = None, **extra: str) -> dict[str, str]:
    env = {runtime.ENV_SPEC: json.dumps(spec), runtime.ENV_JOB_ID: job_id, runtime.ENV_ATTEMPT: "0", **extra}
    if artifacts is not None:
        env[runtime.ENV_ARTIFACTS_URL] = artifacts.as_uri()
    return env


def run_runner(env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "dljobs.workloads.runner"],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, result.stdout
    assert [line for line in lines if line.startswith(ERROR_PREFIX)] == [lines[-1]], result.stderr
    return lines[-1]


def mlp(**sections: Any) -> dict[str, Any]:
    return {
        "name": "runner",
        "workload": {"model": "mlp", "params": {"hidden": [32]}},
        "data": {"source": "builtin://digits"},
        "training": {"epochs": 2, "seed": 1},
        **sections,
    }


def test_a_bad_data_source_ends_in_one_error_line(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    table.write_text("a,b,label\n1,2,x\n3,4,y\n" * 20)
    spec = mlp(data={"source": table.as_uri(), "label_column": "y"})
    result = run_runner(job_env(spec, "1", tmp_path / "artifacts"))
    assert result.returncode == EXIT_USER
    line = error_line(result)
    assert line.startswith(f"{ERROR_PREFIX}data.label_column: ") and "'y'" in line and "label" in line
    assert "Traceback" not in result.stderr


def test_a_missing_data_file_ends_in_one_error_line(tmp_path: Path) -> None:
    spec = mlp(data={"source": (tmp_path / "nowhere.csv").as_uri()})
    result = run_runner(job_env(spec, "1", tmp_path / "artifacts"))
    assert result.returncode == EXIT_USER
    assert error_line(result).startswith(f"{ERROR_PREFIX}data.source: ")


def test_a_metric_the_job_does_not_report_names_its_field(tmp_path: Path) -> None:
    spec = mlp(training={"best_metric": "val_r2", "epochs": 1})
    result = run_runner(job_env(spec, "1", tmp_path / "artifacts"))
    assert result.returncode == EXIT_USER
    line = error_line(result)
    assert line.startswith(f"{ERROR_PREFIX}training.best_metric: 'val_r2' is not available")
    assert "val_accuracy" in line


def test_weights_to_start_from_that_do_not_exist_name_init_from(tmp_path: Path) -> None:
    spec = mlp(workload={"model": "mlp", "init_from": "job://7", "freeze": ["features"]})
    missing = (tmp_path / "jobs" / "7" / "model.pt").as_uri()
    result = run_runner(job_env(spec, "1", tmp_path / "artifacts", **{runtime.ENV_INIT_FROM_URL: missing}))
    assert result.returncode == EXIT_USER
    assert error_line(result) == f"{ERROR_PREFIX}workload.init_from: no weights at {missing}"
    unresolved = run_runner(job_env(spec, "1", tmp_path / "artifacts"))
    assert error_line(unresolved).startswith(f"{ERROR_PREFIX}workload.init_from: 'job://7' was not resolved")


def test_an_invalid_spec_names_its_field(tmp_path: Path) -> None:
    spec = mlp(training={"epochs": 0})
    result = run_runner(job_env(spec, "1", tmp_path / "artifacts"))
    assert result.returncode == EXIT_USER
    assert error_line(result).startswith(f"{ERROR_PREFIX}training.epochs: ")


def test_a_command_runs_once_in_the_working_directory_and_keeps_its_exit_code(tmp_path: Path) -> None:
    spec = {"name": "cmd", "workload": {"command": "echo ran >> marker.txt; echo hello; exit 3"}}
    result = run_runner(job_env(spec, "2"), cwd=tmp_path)
    assert result.returncode == 3
    assert "hello" in result.stdout
    assert (tmp_path / "marker.txt").read_text() == "ran\n"


# --- through Ray's Job API, as the controller launches jobs ----------------------------------------------


def submit_and_wait(ray_head, env: dict[str, str], code_dir: Path | None = None) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Submit the runner as a Ray job (REST, token auth); returns (final status, logs)."""
    from dljobs.client.bundles import build_bundle
    from dljobs.controller.launchers.base import LaunchRequest, LaunchState
    from dljobs.controller.launchers.ray_jobs import RayJobsLauncher

    bundle = build_bundle(code_dir) if code_dir else None
    launch_id = f"dljobs-test-{time.time_ns()}"
    request = LaunchRequest(
        launch_id=launch_id,
        job_id=int(env[runtime.ENV_JOB_ID]),
        attempt=0,
        entrypoint=runtime.RUNNER_ENTRYPOINT,
        env={**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        code_bundle=bundle.data if bundle else None,
        code_sha256=bundle.sha256 if bundle else None,
    )

    async def go() -> tuple[str, str]:
        launcher = RayJobsLauncher(ray_head.dashboard_url, ray_head.token)
        try:
            await launcher.submit(request)
            while True:
                status = await launcher.status(launch_id)
                if status.state not in (LaunchState.PENDING, LaunchState.RUNNING):
                    return status.state.value, await launcher.logs(launch_id)
                await asyncio.sleep(1.0)
        finally:
            await launcher.close()

    return asyncio.run(go())


def check_manifest(artifacts: Path) -> dict[str, dict[str, Any]]:
    """Every artifact in manifest.json exists with the size and sha256 listed."""
    manifest = json.loads((artifacts / "manifest.json").read_text())
    listed = {a["name"]: a for a in manifest["artifacts"]}
    for name, artifact in listed.items():
        data = (artifacts / name).read_bytes()
        assert artifact["size"] == len(data) and artifact["sha256"] == hashlib.sha256(data).hexdigest(), name
    return listed


@pytest.mark.ray
def test_a_model_job_writes_every_artifact_and_reports_live(ray_head, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    artifacts = tmp_path / "jobs" / "31"
    spec = mlp(resources={"workers": 2}, training={"epochs": 3, "seed": 4, "tensorboard": True})
    with recording_server() as server:
        env = job_env(
            spec, "31", artifacts, **{runtime.ENV_API_URL: server.url, runtime.ENV_JOB_TOKEN: "tok"}
        )
        state, logs = submit_and_wait(ray_head, env)
        assert state == "SUCCEEDED", logs[-3000:]
        points, registered = server.points(), server.artifacts()
        tokens = {r.headers["Authorization"] for r in server.requests}
    assert "epoch 3/3" in logs and "dljobs-error" not in logs
    assert logs.count("epoch 2/3 train_loss") == 1  # each progress line once
    listed = check_manifest(artifacts)
    events = [name for name in listed if name.startswith("tensorboard/")]
    assert set(listed) - set(events) == {"model.pt", "model.ts", "card.json", "metrics.jsonl"}
    assert len(events) == 1 and events[0].endswith(".attempt0")
    assert b"val_accuracy" in (artifacts / events[0]).read_bytes()  # a scalar per metric
    assert {a["name"] for a in registered} == {*listed, "manifest.json"}
    assert tokens == {"Bearer tok"}
    assert {p["epoch"] for p in points if p["name"] == "val_accuracy"} == {1, 2, 3}
    assert any(p["name"] == "test_accuracy" for p in points)
    card = json.loads((artifacts / "card.json").read_text())
    assert card["input"] == {"kind": "image", "shape": [1, 8, 8], "dtype": "float32"}
    assert card["seed"] == 4 and card["job_id"] == "31" and len(card["output"]["class_names"]) == 10
    assert card["metrics"]["test"]["test_accuracy"] > 0.5
    assert len(card["data"]["fingerprint"]) == 64

    import torch

    served = torch.jit.load(str(artifacts / "model.ts"))
    assert served(torch.rand(3, 1, 8, 8) * 16).shape == (3, 10)  # raw pixels in, class scores out
    rows = [json.loads(line) for line in (artifacts / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, None]


@pytest.mark.ray
def test_the_custom_mnist_example_learns(ray_head, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    example = ROOT / "examples" / "custom-mnist"
    spec = load_spec_file(example / "job.yaml").model_dump(mode="json")
    artifacts = tmp_path / "jobs" / "32"
    state, logs = submit_and_wait(ray_head, job_env(spec, "32", artifacts), code_dir=example)
    assert state == "SUCCEEDED", logs[-3000:]
    assert "Epoch 10: Loss=" in logs
    listed = check_manifest(artifacts)
    assert listed["outputs/model_weights.pth"]["kind"] == "model"
    card = json.loads((artifacts / "card.json").read_text())
    assert card["workload"]["entrypoint"] == "train.py:train_loop"
    assert card["metrics"]["final"]["test_accuracy"] >= 0.9


@pytest.mark.ray
def test_user_code_that_raises_is_the_job_s_fault(ray_head, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(
        "def train_loop(config):\n    raise ValueError('no data for ' + config['x'])\n"
    )
    spec = {
        "name": "bad",
        "workload": {"code": ".", "entrypoint": "train.py:train_loop", "params": {"x": "y"}},
        "retries": 0,
    }
    env = {**ray_head.env(), "RAY_ADDRESS": ray_head.gcs_address}
    result = run_runner({**job_env(spec, "33", tmp_path / "artifacts"), **env}, cwd=code)
    assert result.returncode == EXIT_USER
    assert error_line(result) == f"{ERROR_PREFIX}workload.entrypoint: worker 0: ValueError: no data for y"
