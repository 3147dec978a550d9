"""The per-worker train function of custom code (`workload.entrypoint: FILE.py:FUNCTION`).

The function is loaded from the code directory (the Ray job's working directory, where the code bundle is
unpacked) and called with `config` = the workload's params plus "spec", the resolved spec. The helpers in
`dljobs.workloads.api` work inside it. At the end rank 0 uploads what the code left in `api.artifact_dir()`
to the job's artifacts under outputs/, and returns what it reported, for the card and metrics.jsonl.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import ray.train
import torch

from dljobs.storage import open_store
from dljobs.workloads import api
from dljobs.workloads.artifacts import OUTPUTS_DIR, upload_directory
from dljobs.workloads.errors import WorkloadError
from dljobs.workloads.reporting import Reporter
from dljobs.workloads.train.context import SPEC_KEY, from_loop_config

CODE_DIR_KEY = "code_dir"  # the driver's working directory, where the entrypoint's file is
ENTRYPOINT_FIELD = "workload.entrypoint"


def code_directory(config: dict[str, Any]) -> Path:
    """The driver's code directory when this node has it too, else this worker's working directory."""
    given = config.get(CODE_DIR_KEY)
    if given and Path(given).is_dir():
        return Path(given)
    return Path.cwd()


def load_entrypoint(entrypoint: str, code_dir: Path) -> Any:
    """The function `FILE.py:FUNCTION` names, imported from `code_dir` (which goes on sys.path)."""
    filename, function = entrypoint.split(":", 1)
    path = (code_dir / filename).resolve()
    if not path.is_file():
        raise WorkloadError(f"'{filename}' is not in the code directory", field=ENTRYPOINT_FIELD)
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    module_name = "dljobs_user_" + filename.removesuffix(".py").replace("/", "_").replace(".", "_")
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise WorkloadError(f"cannot import '{filename}'", field=ENTRYPOINT_FIELD)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    target = getattr(module, function, None)
    if not callable(target):
        raise WorkloadError(f"'{filename}' defines no function '{function}'", field=ENTRYPOINT_FIELD)
    return target


def train_custom(config: dict[str, Any]) -> dict[str, Any] | None:
    """TorchTrainer's train_loop_per_worker for `workload.entrypoint` jobs."""
    spec, run = from_loop_config(config)
    rank = ray.train.get_context().get_world_rank()
    torch.set_num_threads(max(1, int(spec.resources.cpus_per_worker)))
    os.chdir(code_directory(config))
    try:
        function = load_entrypoint(spec.workload.entrypoint or "", Path.cwd())
    except WorkloadError as exc:
        return {"error": str(exc)}
    session = api.CustomSession(
        spec=spec,
        rank=rank,
        reporter=Reporter.from_context(run.api_url, run.job_id, run.job_token, rank=rank, trial=run.trial),
    )
    api._activate(session)
    try:
        function({**spec.workload.params, SPEC_KEY: config[SPEC_KEY]})
        if rank != 0:
            return None
        uploaded = []
        if run.artifacts_url and any(session.artifacts.iterdir()):
            store = open_store(run.artifacts_url, endpoint_url=run.s3_endpoint_url)
            uploaded = [a.to_dict() for a in upload_directory(store, session.artifacts, OUTPUTS_DIR)]
        return {
            "history": session.history,
            "final_metrics": session.history[-1] if session.history else {},
            "artifacts": uploaded,
        }
    finally:
        session.reporter.close()
        api._activate(None)
        shutil.rmtree(session.artifacts, ignore_errors=True)
