"""The model registry: named models with numbered versions, each from a job (or a sweep's best trial).

A version records where its artifacts are, its metrics, its model card and its lineage (the job, the
resolved spec, the data fingerprint, the code bundle's hash), and a stage: none, staging, production or
archived. Promoting a version to production archives the one that was there: a model has at most one.
A successful training job registers a version of the model named after it (or after `deploy.model`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import (
    JobModel,
    ModelVersionModel,
    ProjectModel,
    RegisteredModelModel,
    TrialModel,
)
from dljobs.controller.errors import conflict, invalid, not_found
from dljobs.controller.services.auth import Principal
from dljobs.controller.services.launching import job_prefix
from dljobs.controller.services.trials import list_trials
from dljobs.spec.serving import ModelVersion, RegisteredModel, parse_model_ref
from dljobs.spec.status import JobStatus
from dljobs.storage import ArtifactStore, StorageError

CARD = "card.json"
SERVABLE = "model.ts"


@dataclass(frozen=True)
class VersionRow:
    version: ModelVersionModel
    model: RegisteredModelModel
    project: str


async def read_card(store: ArtifactStore, job_id: int) -> dict[str, Any] | None:
    """The job's model card, or None when it has none (or no servable model beside it)."""
    prefix = job_prefix(job_id)
    try:
        if not await asyncio.to_thread(store.exists, f"{prefix}/{SERVABLE}"):
            return None
        card = json.loads(await asyncio.to_thread(store.get_bytes, f"{prefix}/{CARD}"))
    except (StorageError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def model_name_for(job: JobModel) -> str:
    deploy = job.spec.get("deploy") or {}
    return str(deploy.get("model") or job.name)


def _metrics(card: dict[str, Any]) -> dict[str, Any]:
    metrics = card.get("metrics") or {}
    flat: dict[str, Any] = dict(metrics.get("final") or {})
    flat.update({f"test_{k}": v for k, v in (metrics.get("test") or {}).items()})
    if metrics.get("best"):
        flat["best"] = metrics["best"]
    return flat


def _lineage(
    job: JobModel, card: dict[str, Any], trial: int | None = None, row: TrialModel | None = None
) -> dict[str, Any]:
    data = card.get("data") or {}
    lineage: dict[str, Any] = {
        "job_id": job.id,
        "job_name": job.name,
        "attempt": job.attempt,
        "spec": job.spec,
        "data_fingerprint": data.get("fingerprint"),
        "data_source": data.get("source"),
        "code_hash": card.get("code_bundle"),
        "versions": card.get("versions") or {},
        "seed": card.get("seed"),
    }
    if job.kind == "sweep":
        # the sweep's spec reproduces the sweep; the trial's resolved spec reproduces this model
        sweep = card.get("sweep") or {}
        lineage["trial"] = trial
        lineage["trial_spec"] = card.get("spec")
        lineage["sweep"] = {
            "job_id": job.id,
            "job_name": job.name,
            "trial": trial,
            "point": sweep.get("point", row.params if row else None),
            "metric": sweep.get("metric", (job.spec.get("sweep") or {}).get("metric")),
            "value": sweep.get("value", row.metric if row else None),
            "trials": sweep.get("trials"),
            "best_epoch": row.best_epoch if row else None,
            "checkpoint": row.checkpoint if row else None,
        }
    return lineage


async def best_trial(session: AsyncSession, job: JobModel, card: dict[str, Any]) -> int | None:
    """The trial whose model a sweep's artifacts hold: the card says so (the driver wrote it); a card
    without it falls back on the trial rows, best first by the sweep's metric."""
    number = (card.get("sweep") or {}).get("best_trial")
    if isinstance(number, int) and not isinstance(number, bool):
        return number
    return (await list_trials(session, job)).progress.best_trial


async def _sweep_trial(
    session: AsyncSession, job: JobModel, card: dict[str, Any], trial_id: int | None
) -> tuple[int | None, TrialModel | None]:
    """The trial a version is of, and its row when the sweep's driver reported it. A sweep keeps only its
    best trial's model, so naming another trial (or a trial of a job that is no sweep) is refused."""
    if job.kind != "sweep":
        if trial_id is not None:
            raise invalid("trial", f"job {job.id} is not a sweep: it has no trials", code="invalid_request")
        return None, None
    best = await best_trial(session, job, card)
    if best is None:
        if trial_id is not None:
            raise invalid("trial", f"sweep {job.id} has no best trial on record", code="invalid_request")
        return None, None  # a version all the same (on success, registering must not fail)
    if trial_id is not None and trial_id != best:
        raise invalid(
            "trial",
            f"sweep {job.id} kept the model of its best trial ({best}) only, not trial {trial_id}'s",
            code="invalid_request",
        )
    row = await session.scalar(
        select(TrialModel).where(TrialModel.job_id == job.id, TrialModel.number == best)
    )
    return best, row


async def ensure_model(session: AsyncSession, project_id: int, name: str) -> RegisteredModelModel:
    model = await session.scalar(
        select(RegisteredModelModel).where(
            RegisteredModelModel.project_id == project_id, RegisteredModelModel.name == name
        )
    )
    if model is None:
        model = RegisteredModelModel(project_id=project_id, name=name)
        session.add(model)
        await session.flush()
    return model


async def register_version(
    session: AsyncSession,
    store: ArtifactStore,
    job: JobModel,
    card: dict[str, Any],
    *,
    name: str | None = None,
    trial_id: int | None = None,
    created_by: int | None = None,
) -> ModelVersionModel:
    """A new version of model `name` (default: the job's) from the job's artifacts; a job registered
    before under that model returns its existing version (registration is idempotent). A sweep's version
    is its best trial's (the model its artifacts hold), with the trial in `trial_id` and the lineage."""
    trial_id, trial = await _sweep_trial(session, job, card, trial_id)
    model = await ensure_model(session, job.project_id, name or model_name_for(job))
    existing = await session.scalar(
        select(ModelVersionModel).where(
            ModelVersionModel.model_id == model.id,
            ModelVersionModel.job_id == job.id,
            ModelVersionModel.trial_id.is_(None)
            if trial_id is None
            else ModelVersionModel.trial_id == trial_id,
        )
    )
    if existing is not None:
        return existing
    # the row lock on the model serialises concurrent registrations' version numbers (PostgreSQL)
    await session.execute(
        select(RegisteredModelModel.id).where(RegisteredModelModel.id == model.id).with_for_update()
    )
    latest = await session.scalar(
        select(func.max(ModelVersionModel.version)).where(ModelVersionModel.model_id == model.id)
    )
    version = ModelVersionModel(
        model_id=model.id,
        version=(latest or 0) + 1,
        stage="none",
        job_id=job.id,
        trial_id=trial_id,
        artifacts_uri=store.url_for(job_prefix(job.id)).rstrip("/"),
        task=card.get("task"),
        metrics=_metrics(card),
        card=card,
        lineage=_lineage(job, card, trial_id, trial),
        created_by=created_by if created_by is not None else job.submitted_by,
        created_at=utcnow(),
    )
    session.add(version)
    await session.flush()
    return version


async def register_from_request(
    session: AsyncSession,
    store: ArtifactStore,
    principal: Principal,
    job: JobModel,
    name: str,
    trial: int | None,
    description: str | None,
) -> ModelVersionModel:
    principal.require_user()
    if JobStatus(job.status) != JobStatus.SUCCEEDED:
        raise conflict("not_succeeded", f"job {job.id} is {job.status}: only a succeeded job has a model")
    card = await read_card(store, job.id)
    if card is None:
        raise invalid("job", f"job {job.id} left no servable model ({SERVABLE} and {CARD})")
    version = await register_version(
        session, store, job, card, name=name, trial_id=trial, created_by=principal.user_id
    )
    if description is not None:
        model = await session.get(RegisteredModelModel, version.model_id)
        assert model is not None
        model.description = description
    await session.flush()
    return version


async def _visible_model(
    session: AsyncSession, principal: Principal, name: str, project: str | None
) -> tuple[RegisteredModelModel, str]:
    statement = (
        select(RegisteredModelModel, ProjectModel.name)
        .join(ProjectModel, ProjectModel.id == RegisteredModelModel.project_id)
        .where(RegisteredModelModel.name == name)
    )
    if project is not None:
        statement = statement.where(ProjectModel.name == project)
    rows = [r for r in (await session.execute(statement)).all() if principal.sees_project(r[0].project_id)]
    if not rows:
        raise not_found(f"model '{name}'")
    if len(rows) > 1:
        projects = ", ".join(sorted(r[1] for r in rows))
        raise invalid("project", f"model '{name}' exists in several projects ({projects}): name one")
    return rows[0][0], rows[0][1]


async def resolve_version(
    session: AsyncSession, principal: Principal, ref: str, project: str | None = None
) -> VersionRow:
    """`NAME[:VERSION]`: a number, `latest`, or a stage (`production`, `staging`)."""
    try:
        name, which = parse_model_ref(ref)
    except ValueError as exc:
        raise invalid("model", str(exc), code="invalid_request") from None
    model, project_name = await _visible_model(session, principal, name, project)
    statement = select(ModelVersionModel).where(ModelVersionModel.model_id == model.id)
    if which.isdigit():
        statement = statement.where(ModelVersionModel.version == int(which))
    elif which in ("production", "staging"):
        statement = statement.where(ModelVersionModel.stage == which)
    version = await session.scalar(statement.order_by(ModelVersionModel.version.desc()).limit(1))
    if version is None:
        raise not_found(f"model version '{ref}'")
    return VersionRow(version, model, project_name)


async def list_models(
    session: AsyncSession, principal: Principal, project: str | None = None
) -> list[RegisteredModel]:
    statement = select(RegisteredModelModel, ProjectModel.name).join(
        ProjectModel, ProjectModel.id == RegisteredModelModel.project_id
    )
    if project is not None:
        statement = statement.where(ProjectModel.name == project)
    if not principal.admin:
        statement = statement.where(RegisteredModelModel.project_id.in_(principal.project_ids))
    rows = (await session.execute(statement.order_by(ProjectModel.name, RegisteredModelModel.name))).all()
    versions: dict[int, list[ModelVersionModel]] = {}
    if rows:
        for v in await session.scalars(
            select(ModelVersionModel).where(ModelVersionModel.model_id.in_([m.id for m, _ in rows]))
        ):
            versions.setdefault(v.model_id, []).append(v)
    return [model_to_api(m, p, versions.get(m.id, []), with_versions=False) for m, p in rows]


async def show_model(
    session: AsyncSession, principal: Principal, name: str, project: str | None = None
) -> RegisteredModel:
    model, project_name = await _visible_model(session, principal, name, project)
    versions = list(
        await session.scalars(
            select(ModelVersionModel)
            .where(ModelVersionModel.model_id == model.id)
            .order_by(ModelVersionModel.version)
        )
    )
    return model_to_api(model, project_name, versions, with_versions=True)


async def promote(session: AsyncSession, principal: Principal, row: VersionRow, stage: str) -> VersionRow:
    """Move a version to `stage`; promoting to production archives the previous production version."""
    principal.require_user()
    now = utcnow()
    if stage == "production":
        for other in await session.scalars(
            select(ModelVersionModel).where(
                ModelVersionModel.model_id == row.model.id,
                ModelVersionModel.stage == "production",
                ModelVersionModel.id != row.version.id,
            )
        ):
            other.stage, other.stage_changed_at = "archived", now
    if row.version.stage != stage:
        row.version.stage, row.version.stage_changed_at = stage, now
    await session.flush()
    return row


def version_to_api(
    version: ModelVersionModel, model: RegisteredModelModel, project: str, *, with_card: bool = False
) -> ModelVersion:
    return ModelVersion(
        model=model.name,
        project=project,
        version=version.version,
        stage=version.stage,  # type: ignore[arg-type]
        job_id=version.job_id,
        trial_id=version.trial_id,
        task=version.task,
        artifacts_uri=version.artifacts_uri,
        metrics=version.metrics,
        lineage={k: v for k, v in version.lineage.items() if with_card or k not in ("spec", "trial_spec")},
        created_at=version.created_at,
        stage_changed_at=version.stage_changed_at,
        card=version.card if with_card else None,
    )


def model_to_api(
    model: RegisteredModelModel, project: str, versions: list[ModelVersionModel], *, with_versions: bool
) -> RegisteredModel:
    production = [v.version for v in versions if v.stage == "production"]
    return RegisteredModel(
        name=model.name,
        project=project,
        description=model.description,
        created_at=model.created_at,
        latest_version=max((v.version for v in versions), default=None),
        production_version=max(production, default=None),
        versions=[version_to_api(v, model, project) for v in versions] if with_versions else [],
    )
