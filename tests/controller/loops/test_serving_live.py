"""From training to a served model, end to end on real components: a digits MLP job with a `deploy:`
section runs on the session's Ray head, registers its model, and is served by Ray Serve; the CLI lists,
shows and calls it over HTTP."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from dljobs.controller.app import create_app
from dljobs.controller.ray_head import free_port
from tests.cli.runner import run_cli
from tests.conftest import ADMIN_TOKEN
from tests.support.factories import model_spec
from tests.support.jobs import submit, wait_for
from tests.support.serving import wait_endpoint

# The loops' path from a job to an endpoint; the database's part of it runs on both backends in the API
# tests (test_endpoints_api, test_models_api, test_rollouts_api): the cluster's one is enough here.
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def test_a_trained_job_is_registered_deployed_and_called_from_the_cli(  # type: ignore[no-untyped-def]
    live_settings, serving_settings, tmp_path: Path
) -> None:
    settings = live_settings
    settings.server.port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, migrate=False),
            host="127.0.0.1",
            port=settings.server.port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{settings.server.port}"
        import httpx

        with httpx.Client(base_url=url, timeout=60) as api:
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            spec = model_spec(
                name="digits-live",
                resources={"workers": 1, "cpus_per_worker": 0.5},
                deploy={"name": "digits-live", "num_cpus": 0.1, "max_batch_size": 8},
            )
            job = submit(api, admin, spec)  # type: ignore[arg-type]
            done = wait_for(api, admin, job["id"])  # type: ignore[arg-type]
            assert done["status"] == "SUCCEEDED", done["status_reason"]
            endpoint = wait_endpoint(api, admin, "digits-live")
            assert endpoint["stable"] == {"model": "digits-live", "version": 1}
            version = api.get("/api/v1/models/digits-live/versions/1", headers=admin).json()
            assert (
                version["lineage"]["job_id"] == job["id"]
                and len(version["lineage"]["data_fingerprint"]) == 64
            )
            assert version["card"]["input"]["shape"] == [1, 8, 8] and version["metrics"]

        env = {"DLJOBS_URL": url, "DLJOBS_TOKEN": ADMIN_TOKEN}
        listed = run_cli(["models", "list"], tmp_path, **env)
        assert listed.returncode == 0 and "digits-live" in listed.stdout, listed.stderr
        inputs = tmp_path / "inputs.json"
        inputs.write_text(json.dumps({"inputs": [[0.0] * 64, [8.0] * 64]}))
        called = run_cli(["predict", "digits-live", "--input", str(inputs)], tmp_path, **env)
        assert called.returncode == 0, called.stderr
        answer = json.loads(called.stdout)
        assert answer["model"] == "digits-live" and len(answer["predictions"]) == 2
        assert len(answer["predictions"][0]["probabilities"]) == 10
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"inputs": [[0.0] * 3]}))
        refused = run_cli(["predict", "digits-live", "--input", str(bad)], tmp_path, **env)
        assert refused.returncode == 2 and "inputs[0]" in refused.stderr
        shown = run_cli(["endpoints", "show", "digits-live"], tmp_path, **env)
        assert shown.returncode == 0 and "requests" in shown.stdout and "PSI" in shown.stdout, shown.stdout
        promoted = run_cli(["models", "promote", "digits-live:1"], tmp_path, **env)
        assert promoted.returncode == 0 and "production" in promoted.stdout
    finally:
        server.should_exit = True
        thread.join()
