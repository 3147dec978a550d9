"""`python -m dljobs.workloads.runner`: the driver of a dljobs job on Ray.

Reads the job from the environment the controller sets (dljobs.spec.runtime), then by workload kind:

- command: runs it once in the working directory (the code bundle) and exits with its exit code;
- model: checks the data and the spec on the driver, fits a TorchTrainer with the built-in loop, writes the
  artifacts (model.pt, model.ts, card.json, metrics.jsonl, manifest.json) and registers them;
- entrypoint: fits a TorchTrainer that runs the custom function on every worker, writes card.json,
  metrics.jsonl, the function's outputs and manifest.json, and registers them.

Progress goes to stdout (the job's logs). A failure ends with ONE line on stderr, `dljobs-error: <reason>`,
which the controller shows as the job's failure reason. Exit codes: 0 success, 1 the job's own fault (spec,
data, parameters, custom code), 75 (EX_TEMPFAIL) an infrastructure or internal failure (storage, Ray, a
bug), which the controller retries within the job's budget; a command's own exit code passes through.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import traceback
from typing import Any

from dljobs.spec.errors import SpecError
from dljobs.spec.job import JobSpec
from dljobs.storage import StorageError, open_store
from dljobs.workloads.artifacts import ArtifactWriter
from dljobs.workloads.errors import WorkloadError
from dljobs.workloads.train.context import (
    RunContext,
    loop_config,
    resolve_seed,
    spec_from_env,
    with_seed,
)

EXIT_OK = 0
EXIT_USER = 1
EXIT_INFRA = 75  # EX_TEMPFAIL: the controller retries the job within its budget
ERROR_PREFIX = "dljobs-error: "
MAX_REASON = 600


class JobFailed(Exception):
    """A failure already classified: its exit code and its one-line reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


STARTED = time.monotonic()


def say(message: str) -> None:
    """A progress line in the job's logs, with the seconds since the runner started."""
    print(f"dljobs [{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def error_line(reason: str) -> str:
    text = " ".join(reason.split())
    return ERROR_PREFIX + (text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "...")


# --- command ----------------------------------------------------------------------------------------------


def run_command(command: str) -> int:
    """Run the command once through the shell; SIGTERM and SIGINT are passed on to it."""
    say(f"running: {command}")
    process = subprocess.Popen(command, shell=True, start_new_session=True)

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    code = process.wait()
    return 128 - code if code < 0 else code


# --- Ray --------------------------------------------------------------------------------------------------


def connect_ray() -> None:
    import ray

    from dljobs.workloads.train.trainer import apply_ray_train_env

    apply_ray_train_env()
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS", "auto"), logging_level="WARNING")


def failure_of(error: BaseException, *, custom_code: bool) -> JobFailed:
    """Classify what fit() raised: a user's error (WorkloadError; custom code raising) or infrastructure."""
    failures = getattr(error, "worker_failures", None)
    if not failures:
        return JobFailed(EXIT_INFRA, f"training failed: {_first_line(error)}")
    for _, failure in sorted(failures.items()):
        found = _workload_error_in(failure)
        if found is not None:
            return JobFailed(EXIT_USER, str(found))
    rank, first = min(failures.items())
    if _is_actor_death(first):
        return JobFailed(EXIT_INFRA, f"worker {rank} died: {_first_line(first)}")
    if custom_code:
        return JobFailed(EXIT_USER, f"workload.entrypoint: worker {rank}: {_first_line(first)}")
    return JobFailed(EXIT_INFRA, f"internal error on worker {rank}: {_first_line(first)}")


def _workload_error_in(error: BaseException | None) -> WorkloadError | None:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, WorkloadError):
            return error
        seen.add(id(error))
        error = getattr(error, "cause", None) or error.__cause__
    return None


def _is_actor_death(error: BaseException) -> bool:
    """A worker process that died (killed, out of memory, a lost node) rather than code that raised."""
    from ray.exceptions import RayActorError

    return isinstance(error, RayActorError) or type(error).__name__ == "WorkerHealthCheckFailedError"


def _first_line(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    shown = cause if isinstance(cause, BaseException) else error
    text = str(shown).strip().splitlines()
    message = text[-1] if text else ""
    name = type(shown).__name__
    return f"{name}: {message}" if message and not message.startswith(name) else (message or name)


def fit(trainer: Any, *, custom_code: bool) -> Any:
    from ray.train import TrainingFailedError

    try:
        result = trainer.fit()
    except TrainingFailedError as exc:
        traceback.print_exc()
        raise failure_of(exc, custom_code=custom_code) from exc
    summary = result.return_value or {}
    if summary.get("error"):
        raise JobFailed(EXIT_USER, summary["error"])
    return result


# --- model and entrypoint ---------------------------------------------------------------------------------


def describe(spec: JobSpec, context: RunContext, seed: int) -> str:
    workload = spec.workload
    what = workload.model or workload.entrypoint or workload.command
    data = f" on {spec.data.source}" if spec.data else ""
    resources = spec.resources
    gpus = f", {resources.gpus_per_worker:g} GPU" if resources.gpus_per_worker else ""
    return (
        f"job {context.job_id} attempt {context.attempt}: {workload.kind} {what}{data}; "
        f"{resources.workers} worker(s) x {resources.cpus_per_worker:g} CPU{gpus}; seed {seed}"
    )


def prepare_model_data(spec: JobSpec, seed: int) -> tuple[Any, Any]:
    """(DataInfo, the data) loaded on the driver, so that its errors surface before any worker starts:
    PreparedData in memory, or StreamingData (lazy Ray Data datasets, which need Ray already)."""
    if spec.data is not None and spec.data.streaming:
        from dljobs.workloads.data.streaming import build_streaming_data

        connect_ray()
        streaming = build_streaming_data(spec, seed=seed)
        return streaming.info, streaming
    from dljobs.workloads.data import load_data

    prepared = load_data(spec, seed=seed)
    return prepared.info, prepared


def hand_over(data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(loop config entries, trainer datasets): in-memory splits go to every worker through the object store
    (the same data, loaded once); streams go to the trainer, which shards them."""
    import ray

    from dljobs.workloads.data.base import PreparedData
    from dljobs.workloads.train.loop import DATA_KEY, STREAMS_KEY

    if isinstance(data, PreparedData):
        return {DATA_KEY: ray.put(data)}, {}
    datasets = data.datasets()
    return {DATA_KEY: data.info, STREAMS_KEY: sorted(datasets)}, datasets


def run_model(spec: JobSpec, context: RunContext, seed: int) -> dict[str, Any]:
    from dljobs.workloads.artifacts import model_card, write_model_artifacts
    from dljobs.workloads.train.checkpoints import MODEL_FILE, best_of, read_checkpoint_file
    from dljobs.workloads.train.loop import train_builtin, training_model
    from dljobs.workloads.train.metrics import check_monitored
    from dljobs.workloads.train.trainer import build_trainer

    started = time.monotonic()
    info, data = prepare_model_data(spec, seed)
    check_monitored(spec.training, info, has_validation=info.num_val > 0)
    training_model(
        spec, info, context
    )  # the model fits the data, init_from's weights fit it, freeze names exist
    say(
        f"data: {info.task}, {info.input_kind} {list(info.input_shape)}, {info.num_train} train / "
        f"{info.num_val} validation / {info.num_test} test examples ({time.monotonic() - started:.1f}s)"
    )
    connect_ray()
    data_config, datasets = hand_over(data)
    config = loop_config(spec, context, data_config)
    trainer = build_trainer(train_builtin, config, spec, context, datasets)
    say("starting the training workers")
    result = fit(trainer, custom_code=False)
    say("training finished; writing artifacts")
    summary = result.return_value
    chosen = best_of(result.best_checkpoints or [])
    if chosen is None:
        raise JobFailed(EXIT_INFRA, "training ended without a checkpoint to export")
    model_bytes = read_checkpoint_file(chosen[0], MODEL_FILE)
    writer = ArtifactWriter(open_store(context.artifacts_url or "", endpoint_url=context.s3_endpoint_url))
    card = model_card(
        spec=spec, job_id=context.job_id, attempt=context.attempt, seed=seed, summary=summary, info=info
    )
    write_model_artifacts(writer, spec=spec, info=info, model_bytes=model_bytes, card=card, summary=summary)
    return finish(writer, context, summary)


def run_entrypoint(spec: JobSpec, context: RunContext, seed: int) -> dict[str, Any]:
    from dljobs.workloads.artifacts import model_card, write_custom_artifacts
    from dljobs.workloads.train.custom import CODE_DIR_KEY, train_custom
    from dljobs.workloads.train.trainer import build_trainer

    reserved = {"spec", CODE_DIR_KEY, "dljobs"} & set(spec.workload.params)
    if reserved:
        raise WorkloadError(f"'{sorted(reserved)[0]}' is reserved for dljobs", field="workload.params")
    connect_ray()
    config = loop_config(spec, context, {CODE_DIR_KEY: os.getcwd()})
    result = fit(build_trainer(train_custom, config, spec, context, ranked=False), custom_code=True)
    summary = result.return_value or {}
    writer = ArtifactWriter(open_store(context.artifacts_url or "", endpoint_url=context.s3_endpoint_url))
    card = model_card(spec=spec, job_id=context.job_id, attempt=context.attempt, seed=seed, summary=summary)
    write_custom_artifacts(writer, card=card, summary=summary)
    return finish(writer, context, summary)


def finish(writer: ArtifactWriter, context: RunContext, summary: dict[str, Any]) -> dict[str, Any]:
    from dljobs.workloads.artifacts import record_stored
    from dljobs.workloads.reporting import Reporter
    from dljobs.workloads.train.tensorboard import PREFIX as TENSORBOARD

    record_stored(writer, TENSORBOARD, "metrics")
    writer.write_manifest()
    for artifact in writer.artifacts:
        say(f"artifact {artifact.name}: {artifact.size} bytes, sha256 {artifact.sha256[:12]}")
    reporter = Reporter(context.api_url, context.job_id, context.job_token)
    try:
        if summary.get("test_metrics"):
            reporter.metrics(summary["test_metrics"], step=int(summary.get("global_step") or 0))
        if not reporter.register_artifacts([a.to_dict() for a in writer.artifacts]):
            say("warning: the controller did not take the artifact list; manifest.json has it")
    finally:
        reporter.close()
    return summary


def with_init_from(spec: JobSpec, context: RunContext) -> RunContext:
    """The weights to start from: DLJOBS_INIT_FROM_URL (the controller resolves job://ID), else an s3:// URL
    given in the spec as it stands."""
    source = spec.workload.init_from
    if source is None or context.init_from_url:
        return context
    if source.startswith("s3://"):
        return dataclasses.replace(context, init_from_url=source)
    raise WorkloadError(
        f"'{source}' was not resolved to a model URL (DLJOBS_INIT_FROM_URL is not set)",
        field="workload.init_from",
    )


# --- main -------------------------------------------------------------------------------------------------


def run(env: dict[str, str] | None = None) -> int:
    spec = spec_from_env(env)
    context = RunContext.from_env(env)
    if spec.workload.kind == "command":
        return run_command(spec.workload.command or "")
    if not context.artifacts_url:
        raise WorkloadError("DLJOBS_ARTIFACTS_URL is not set: a training job needs somewhere to write to")
    context = with_init_from(spec, context)
    seed = resolve_seed(spec, context.job_id)
    spec = with_seed(spec, seed)
    say(describe(spec, context, seed))
    if spec.sweep is not None:
        from dljobs.workloads.sweep import run_sweep

        summary = run_sweep(spec, context, seed)
    elif spec.workload.kind == "model":
        summary = run_model(spec, context, seed)
    else:
        summary = run_entrypoint(spec, context, seed)
    final = summary.get("test_metrics") or summary.get("final_metrics") or {}
    shown = ", ".join(f"{k}={v:.4g}" for k, v in final.items() if isinstance(v, float))
    say(f"done{': ' + shown if shown else ''}")
    return EXIT_OK


def fail(reason: str, code: int) -> int:
    """The one-line reason, last in the log: Ray's log forwarding is stopped first."""
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    print(error_line(reason), file=sys.stderr, flush=True)
    return code


def main() -> int:
    try:
        return run()
    except JobFailed as exc:
        return fail(exc.reason, exc.code)
    except (WorkloadError, SpecError) as exc:
        return fail(str(exc), EXIT_USER)
    except StorageError as exc:
        return fail(f"artifacts: {exc}", EXIT_INFRA)
    except Exception as exc:
        traceback.print_exc()
        return fail(f"internal error: {type(exc).__name__}: {exc}", EXIT_INFRA)


if __name__ == "__main__":
    sys.exit(main())
