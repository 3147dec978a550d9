"""What the runner hands every training worker: the resolved spec and the job's runtime context.

The runner reads the environment the controller sets (dljobs.spec.runtime) once, on the driver; workers get
it inside the train loop's config, so they never depend on which environment variables reached them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from dljobs.spec import runtime
from dljobs.spec.job import JobSpec
from dljobs.spec.loading import read_stored_spec, validate_spec
from dljobs.workloads.errors import WorkloadError

SPEC_KEY = "spec"  # the resolved spec in a train loop's config
CONTEXT_KEY = "dljobs"  # the RunContext in a train loop's config


@dataclass(frozen=True)
class RunContext:
    job_id: str
    attempt: int = 0
    artifacts_url: str | None = None
    s3_endpoint_url: str | None = None
    api_url: str | None = None
    job_token: str | None = None
    init_from_url: str | None = None
    trial: int | None = None  # the trial's number when this run is one trial of a sweep

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunContext:
        env = os.environ if env is None else env
        attempt = env.get(runtime.ENV_ATTEMPT, "0") or "0"
        if not attempt.isdigit():
            raise WorkloadError(f"{runtime.ENV_ATTEMPT}='{attempt}' is not a whole number")
        return cls(
            job_id=env.get(runtime.ENV_JOB_ID, "") or "local",
            attempt=int(attempt),
            artifacts_url=env.get(runtime.ENV_ARTIFACTS_URL) or None,
            s3_endpoint_url=env.get(runtime.ENV_S3_ENDPOINT_URL) or None,
            api_url=env.get(runtime.ENV_API_URL) or None,
            job_token=env.get(runtime.ENV_JOB_TOKEN) or None,
            init_from_url=env.get(runtime.ENV_INIT_FROM_URL) or None,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunContext:
        return cls(**data)

    @property
    def run_name(self) -> str:
        """The Ray Train run name: the same for every attempt of a job (or a sweep's trial), so a retried job
        resumes."""
        trial = f"-trial-{self.trial}" if self.trial is not None else ""
        return f"dljobs-job-{self.job_id}{trial}"


def spec_from_env(env: Mapping[str, str] | None = None) -> JobSpec:
    """The resolved spec the controller passed in DLJOBS_SPEC (read tolerantly, as stored specs are)."""
    env = os.environ if env is None else env
    text = env.get(runtime.ENV_SPEC)
    if not text:
        raise WorkloadError(f"{runtime.ENV_SPEC} is not set: the runner needs the job's resolved spec")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkloadError(
            f"{runtime.ENV_SPEC} is not valid JSON: {exc.msg} at position {exc.pos}"
        ) from None
    if not isinstance(document, dict):
        raise WorkloadError(f"{runtime.ENV_SPEC} must hold a JSON object, the job spec")
    try:
        return read_stored_spec(document)
    except ValidationError:
        return validate_spec(document)  # raises a SpecError that names the field


def resolve_seed(spec: JobSpec, job_id: str) -> int:
    """training.seed, or one derived from the job id: every attempt of a job uses the same seed, so a
    resumed run keeps its data split and its random streams."""
    if spec.training.seed is not None:
        return spec.training.seed
    digest = hashlib.sha256(f"dljobs-seed:{job_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


def with_seed(spec: JobSpec, seed: int) -> JobSpec:
    """The spec with training.seed filled in (what the card records and the workers use)."""
    return spec.model_copy(update={"training": spec.training.model_copy(update={"seed": seed})})


def loop_config(spec: JobSpec, context: RunContext, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The train loop config: the resolved spec, the run context, and (for custom code) the params."""
    return {**(extra or {}), SPEC_KEY: spec.model_dump(mode="json"), CONTEXT_KEY: context.to_dict()}


def from_loop_config(config: Mapping[str, Any]) -> tuple[JobSpec, RunContext]:
    return read_stored_spec(config[SPEC_KEY]), RunContext.from_dict(config[CONTEXT_KEY])
