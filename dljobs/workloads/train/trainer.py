"""A TorchTrainer from the spec: scaling, storage, failure handling, checkpoint retention.

- ScalingConfig: `resources.workers` workers of `cpus_per_worker` CPUs (and `gpus_per_worker` GPUs of
  type `accelerator`), placed by `resources.placement` (pack, spread, strict_pack, strict_spread).
- RunConfig: the run is named after the job (`dljobs-job-<id>`, the same for every attempt) and stored under
  `<artifacts URL>/checkpoints`, so a retried job finds its checkpoints and resumes instead of starting
  over; on S3 through a pyarrow S3FileSystem with the endpoint from DLJOBS_S3_ENDPOINT_URL.
- FailureConfig: `retries` worker-group restarts within an attempt, each from the latest checkpoint.
- CheckpointConfig: keep `training.keep_checkpoints` best checkpoints by `checkpoint_score` (plus the
  latest, which Ray Train always keeps).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlparse

from dljobs.spec.job import JobSpec, ResourcesSpec
from dljobs.workloads.artifacts import CHECKPOINTS_DIR
from dljobs.workloads.train.checkpoints import SCORE
from dljobs.workloads.train.context import RunContext
from dljobs.workloads.train.cpu_features import cpu_bf16_env
from dljobs.workloads.train.precision import distributed_backend

PLACEMENT = {
    "pack": "PACK",
    "spread": "SPREAD",
    "strict_pack": "STRICT_PACK",
    "strict_spread": "STRICT_SPREAD",
}
# Ray Train settings of the driver (see docs/training.md, "Start-up time"); each only when not set already.
RAY_TRAIN_ENV = {
    # Workers keep the job's working directory (custom code imports from it); Ray Train would chdir.
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    # The controller polls the worker group every 2 s by default: a finished run waits for the next poll.
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
    # Ray Train sends print() both to its logger and to stdout: every line would show twice in the logs.
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
}
S3_ATTEMPTS = 5
CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


def apply_ray_train_env() -> None:
    """Set dljobs' Ray Train settings in this (driver) process before Ray Train reads them; Ray Train
    passes the RAY_TRAIN_* ones on to its controller and workers."""
    for name, value in RAY_TRAIN_ENV.items():
        os.environ.setdefault(name, value)


def scaling_config(resources: ResourcesSpec) -> Any:
    from ray.train import ScalingConfig

    per_worker: dict[str, float] = {"CPU": resources.cpus_per_worker}
    if resources.gpus_per_worker > 0:
        per_worker["GPU"] = resources.gpus_per_worker
    if resources.memory_per_worker:
        per_worker["memory"] = float(resources.memory_per_worker)
    return ScalingConfig(
        num_workers=resources.workers,
        use_gpu=resources.gpus_per_worker > 0,
        resources_per_worker=per_worker,
        accelerator_type=resources.accelerator,
        placement_strategy=PLACEMENT[resources.placement],
    )


def checkpoint_storage(context: RunContext) -> tuple[str, Any]:
    """(storage_path, pyarrow filesystem or None) for the job's checkpoints: <artifacts URL>/checkpoints."""
    if not context.artifacts_url:
        raise ValueError("the job has no artifacts URL: checkpoints need somewhere to go")
    parsed = urlparse(context.artifacts_url.rstrip("/"))
    if parsed.scheme == "file":
        path = os.path.join(unquote(parsed.path), CHECKPOINTS_DIR)
        os.makedirs(path, exist_ok=True)
        return path, None
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"'{context.artifacts_url}': artifacts URLs are file:///path or s3://bucket/prefix")
    return f"{parsed.netloc}{parsed.path}/{CHECKPOINTS_DIR}", s3_filesystem(context.s3_endpoint_url)


def s3_filesystem(endpoint_url: str | None) -> Any:
    """A pyarrow S3FileSystem with the endpoint and credentials of this process's environment.

    pyarrow ignores AWS_ENDPOINT_URL_S3: the endpoint goes in `endpoint_override`. Credentials are passed
    explicitly so that the pickled filesystem Ray Train ships to its workers carries them.
    """
    import pyarrow.fs as pafs

    options: dict[str, Any] = {
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS),
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    }
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        options.update(
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
            session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
        )
    if endpoint_url:
        endpoint = urlparse(endpoint_url if "://" in endpoint_url else f"http://{endpoint_url}")
        options.update(scheme=endpoint.scheme, endpoint_override=endpoint.netloc)
    return pafs.S3FileSystem(**options)


def run_config(
    spec: JobSpec,
    context: RunContext,
    *,
    ranked: bool = True,
    callbacks: list[Any] | None = None,
    retries: int | None = None,
) -> Any:
    """`ranked`: checkpoints carry `checkpoint_score` (built-in models); custom code's are kept by recency.
    `retries`: worker-group restarts (default the job's `retries`; a sweep's trials leave them to Tune)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig

    storage_path, filesystem = checkpoint_storage(context)
    passed_env = {name: os.environ[name] for name in CREDENTIAL_ENV if os.environ.get(name)}
    passed_env.update(cpu_bf16_env(spec.training.precision, spec.resources.gpus_per_worker > 0))
    return RunConfig(
        name=context.run_name,
        storage_path=storage_path,
        storage_filesystem=filesystem,
        failure_config=FailureConfig(max_failures=spec.retries if retries is None else retries),
        checkpoint_config=CheckpointConfig(
            num_to_keep=spec.training.keep_checkpoints,
            checkpoint_score_attribute=SCORE if ranked else None,
            checkpoint_score_order="max",
        ),
        worker_runtime_env={"env_vars": passed_env} if passed_env else None,
        callbacks=callbacks,
    )


def build_trainer(
    train_fn: Callable[[dict[str, Any]], Any],
    config: dict[str, Any],
    spec: JobSpec,
    context: RunContext,
    datasets: Mapping[str, Any] | None = None,
    *,
    ranked: bool = True,
    callbacks: list[Any] | None = None,
    retries: int | None = None,
) -> Any:
    from ray.train.torch import TorchConfig, TorchTrainer

    return TorchTrainer(
        train_fn,
        train_loop_config=config,
        torch_config=TorchConfig(backend=distributed_backend(spec.resources.gpus_per_worker > 0)),
        scaling_config=scaling_config(spec.resources),
        run_config=run_config(spec, context, ranked=ranked, callbacks=callbacks, retries=retries),
        datasets=dict(datasets) if datasets else None,
    )
