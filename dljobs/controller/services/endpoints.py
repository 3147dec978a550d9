"""Endpoints: the desired state of served models. The API and jobs' `deploy:` sections write it; the
deployer loop makes it true on Ray Serve and moves rollouts along.

Rollouts: a new version always starts in the canary slot, with its own Serve application. With a
percentage it gets that share of traffic once its application runs, until it is promoted (by command) or
rolled back (by the deployer, when its error rate or p99 latency crosses the thresholds). Without one
(`canary_percent` 100, an internal value) it takes all traffic as soon as it runs. Either way the version
switched away from keeps its application for `drain_seconds`, so no request routed before the switch
is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import (
    EndpointEventModel,
    EndpointKeyModel,
    EndpointModel,
    JobModel,
    ModelVersionModel,
    ProjectModel,
    RegisteredModelModel,
)
from dljobs.controller.errors import conflict, invalid, not_found
from dljobs.controller.services import registry, webhooks
from dljobs.controller.services.auth import Principal, hash_token, new_token, project_by_name
from dljobs.spec.api import API_PREFIX
from dljobs.spec.serving import (
    ENDPOINT_KEY_PREFIX,
    CreatedEndpointKey,
    Endpoint,
    EndpointEvent,
    EndpointKey,
    ServingConfig,
    VersionRef,
)

SWITCH = 100.0  # canary_percent of a version that takes all traffic once it runs


def app_name(endpoint: str, version_id: int) -> str:
    """The Serve application (and route prefix) of one version of one endpoint."""
    return f"dljobs-{endpoint}-v{version_id}"


@dataclass(frozen=True)
class EndpointRow:
    endpoint: EndpointModel
    project: str


async def add_event(session: AsyncSession, endpoint: EndpointModel, kind: str, message: str) -> None:
    """The endpoint's history, and its project's `deployment.changed` webhooks, in the same transaction."""
    session.add(EndpointEventModel(endpoint_id=endpoint.id, kind=kind, message=message[:4000]))
    await webhooks.deployment_changed(session, endpoint, kind, message[:4000])


def _config(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    try:
        return ServingConfig.model_validate({**current, **changes}).model_dump(mode="json")
    except ValueError as exc:
        errors = getattr(exc, "errors", lambda: [])()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        message = errors[0]["msg"] if errors else str(exc)
        raise invalid(f"config.{where}".rstrip("."), message, code="invalid_request") from None


async def deploy_version(
    session: AsyncSession,
    principal: Principal,
    name: str,
    version: ModelVersionModel,
    project_id: int,
    *,
    canary: float,
    changes: dict[str, Any],
) -> tuple[EndpointModel, CreatedEndpointKey | None]:
    """Create endpoint `name` serving `version`, or roll `version` out on it. Returns the endpoint and,
    for a new endpoint, its first API key (shown once)."""
    principal.require_user()
    endpoint = await session.scalar(select(EndpointModel).where(EndpointModel.name == name))
    now = utcnow()
    key: CreatedEndpointKey | None = None
    described = await describe_version(session, version)
    if endpoint is None:
        endpoint = EndpointModel(
            project_id=project_id,
            name=name,
            status="deploying",
            status_reason=f"starting {described}",
            config=_config({}, changes),
            canary_version_id=version.id,
            canary_percent=SWITCH,
            canary_ready=False,
            canary_started_at=now,
            created_by=principal.user_id,
            generation=1,
        )
        session.add(endpoint)
        await session.flush()
        key = await create_key(session, endpoint, "default")
        await add_event(session, endpoint, "created", f"deploying {described}")
        await session.flush()
        return endpoint, key
    if endpoint.project_id != project_id or not principal.sees_project(endpoint.project_id):
        raise conflict("already_exists", f"endpoint '{name}' belongs to another project")
    if endpoint.status == "deleting":
        raise conflict("deleting", f"endpoint '{name}' is being deleted")
    endpoint.config = _config(endpoint.config, changes)
    endpoint.generation += 1
    if version.id in (endpoint.stable_version_id, endpoint.canary_version_id):
        await add_event(session, endpoint, "updated", f"configuration updated ({described} unchanged)")
    else:
        if endpoint.canary_version_id is not None:
            await add_event(session, endpoint, "replaced", "the previous canary was replaced")
        endpoint.canary_version_id = version.id
        endpoint.canary_ready = False
        endpoint.canary_started_at = now
        endpoint.canary_percent = canary if canary > 0 and endpoint.stable_version_id else SWITCH
        what = f"canary at {canary:g}%" if endpoint.canary_percent < SWITCH else "switch"
        await add_event(session, endpoint, "rollout", f"rolling out {described} ({what})")
        if endpoint.status != "ready":
            endpoint.status, endpoint.status_reason = "deploying", f"starting {described}"
    endpoint.updated_at = now
    await session.flush()
    return endpoint, key


async def describe_version(session: AsyncSession, version: ModelVersionModel) -> str:
    model = await session.get(RegisteredModelModel, version.model_id)
    return f"{model.name if model else '?'}:{version.version}"


async def deploy_request(
    session: AsyncSession,
    store: Any,
    principal: Principal,
    *,
    name: str,
    model: str | None,
    job: JobModel | None,
    project: str | None,
    canary: float,
    changes: dict[str, Any],
) -> tuple[EndpointModel, CreatedEndpointKey | None]:
    """`dljobs deploy MODEL[:VERSION] | JOB`: a job's model is registered first (idempotently)."""
    if job is not None:
        card = await registry.read_card(store, job.id)
        if card is None or job.status != "SUCCEEDED":
            raise invalid("job", f"job {job.id} has no servable model ({job.status})", code="invalid_request")
        version = await registry.register_version(session, store, job, card, created_by=principal.user_id)
        project_id = job.project_id
    else:
        assert model is not None
        row = await registry.resolve_version(session, principal, model, project)
        version, project_id = row.version, row.model.project_id
    return await deploy_version(session, principal, name, version, project_id, canary=canary, changes=changes)


async def deploy_from_job(session: AsyncSession, job: JobModel, version: ModelVersionModel) -> None:
    """A job's `deploy:` section, applied when it succeeded (in the transaction that records it)."""
    spec = dict(job.spec.get("deploy") or {})
    name = spec.pop("name")
    canary = float(spec.pop("canary", 0.0))
    spec.pop("model", None)
    principal = Principal(job.submitted_by, "job", False, frozenset({job.project_id}))
    existing = await session.scalar(select(EndpointModel).where(EndpointModel.name == name))
    if existing is not None and existing.project_id != job.project_id:
        return  # the name is another project's: the job's event says so below
    await deploy_version(session, principal, name, version, job.project_id, canary=canary, changes=spec)


async def create_key(session: AsyncSession, endpoint: EndpointModel, name: str) -> CreatedEndpointKey:
    """A new API key for the endpoint; the secret is returned once and only its hash is kept."""
    secret = new_token(ENDPOINT_KEY_PREFIX)
    row = EndpointKeyModel(
        endpoint_id=endpoint.id,
        name=name,
        prefix=secret[:12],
        key_hash=hash_token(secret),
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return key_to_api(row, secret)  # type: ignore[return-value]


async def revoke_key(session: AsyncSession, endpoint: EndpointModel, key_id: int) -> EndpointKeyModel:
    row = await session.get(EndpointKeyModel, key_id)
    if row is None or row.endpoint_id != endpoint.id:
        raise not_found(f"key {key_id}")
    row.revoked_at = row.revoked_at or utcnow()
    await session.flush()
    return row


async def list_keys(session: AsyncSession, endpoint: EndpointModel) -> list[EndpointKeyModel]:
    return list(
        await session.scalars(
            select(EndpointKeyModel)
            .where(EndpointKeyModel.endpoint_id == endpoint.id)
            .order_by(EndpointKeyModel.id)
        )
    )


async def get_endpoint(session: AsyncSession, principal: Principal, name: str) -> EndpointRow:
    row = (
        await session.execute(
            select(EndpointModel, ProjectModel.name)
            .join(ProjectModel, ProjectModel.id == EndpointModel.project_id)
            .where(EndpointModel.name == name)
        )
    ).first()
    if row is None or not principal.sees_project(row[0].project_id):
        raise not_found(f"endpoint '{name}'")
    return EndpointRow(row[0], row[1])


async def list_endpoints(
    session: AsyncSession, principal: Principal, project: str | None
) -> list[EndpointRow]:
    statement = select(EndpointModel, ProjectModel.name).join(
        ProjectModel, ProjectModel.id == EndpointModel.project_id
    )
    if project is not None:
        found = await project_by_name(session, project)
        statement = statement.where(EndpointModel.project_id == (found.id if found else -1))
    if not principal.admin:
        statement = statement.where(EndpointModel.project_id.in_(principal.project_ids))
    rows = (await session.execute(statement.order_by(EndpointModel.name))).all()
    return [EndpointRow(e, p) for e, p in rows]


async def promote_canary(
    session: AsyncSession, principal: Principal, endpoint: EndpointModel, drain: float
) -> None:
    principal.require_user()
    if endpoint.canary_version_id is None:
        raise conflict("no_canary", f"endpoint '{endpoint.name}' has no canary to promote")
    if not endpoint.canary_ready:
        raise conflict("canary_not_ready", "the canary's application is not running yet: try again shortly")
    version = await session.get(ModelVersionModel, endpoint.canary_version_id)
    assert version is not None
    await switch_to_canary(session, endpoint, drain, f"promoted {await describe_version(session, version)}")


async def switch_to_canary(
    session: AsyncSession, endpoint: EndpointModel, drain: float, message: str
) -> None:
    """The canary becomes the stable version; the old stable one drains."""
    now = utcnow()
    if endpoint.stable_version_id is not None:
        endpoint.draining_version_id = endpoint.stable_version_id
        endpoint.draining_until = now + timedelta(seconds=drain)
    endpoint.stable_version_id = endpoint.canary_version_id
    endpoint.canary_version_id = None
    endpoint.canary_percent = 0.0
    endpoint.canary_ready = False
    endpoint.canary_started_at = None
    endpoint.status, endpoint.status_reason = "ready", message
    endpoint.generation += 1
    endpoint.updated_at = now
    await add_event(session, endpoint, "promoted", message)
    await session.flush()


async def roll_back(session: AsyncSession, endpoint: EndpointModel, reason: str, drain: float) -> None:
    """The canary is dropped (its application drains); the stable version keeps all traffic."""
    now = utcnow()
    if endpoint.canary_ready and endpoint.canary_version_id is not None:
        endpoint.draining_version_id = endpoint.canary_version_id
        endpoint.draining_until = now + timedelta(seconds=drain)
    endpoint.canary_version_id = None
    endpoint.canary_percent = 0.0
    endpoint.canary_ready = False
    endpoint.canary_started_at = None
    if endpoint.stable_version_id is None:
        endpoint.status, endpoint.status_reason = "failed", reason
    else:
        endpoint.status_reason = reason
    endpoint.generation += 1
    endpoint.updated_at = now
    await add_event(session, endpoint, "rolled_back", reason)
    await session.flush()


async def delete_endpoint(session: AsyncSession, principal: Principal, endpoint: EndpointModel) -> None:
    principal.require_user()
    endpoint.status, endpoint.status_reason = "deleting", "removing its Serve applications"
    endpoint.generation += 1
    await add_event(session, endpoint, "deleting", f"deleted by {principal.name}")
    await session.flush()


async def events(session: AsyncSession, endpoint: EndpointModel, limit: int = 50) -> list[EndpointEventModel]:
    rows = await session.scalars(
        select(EndpointEventModel)
        .where(EndpointEventModel.endpoint_id == endpoint.id)
        .order_by(EndpointEventModel.id.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


async def _ref(session: AsyncSession, version_id: int | None) -> VersionRef | None:
    if version_id is None:
        return None
    version = await session.get(ModelVersionModel, version_id)
    if version is None:
        return None
    model = await session.get(RegisteredModelModel, version.model_id)
    return VersionRef(model=model.name if model else "?", version=version.version)


async def endpoint_to_api(session: AsyncSession, row: EndpointRow, *, with_events: bool = False) -> Endpoint:
    e = row.endpoint
    return Endpoint(
        name=e.name,
        project=row.project,
        status=e.status,  # type: ignore[arg-type]
        status_reason=e.status_reason,
        stable=await _ref(session, e.stable_version_id),
        canary=await _ref(session, e.canary_version_id),
        canary_percent=e.canary_percent if e.canary_percent < SWITCH else 0.0,
        canary_ready=e.canary_ready,
        config=e.config,
        url=f"{API_PREFIX}/endpoints/{e.name}/predict",
        created_at=e.created_at,
        updated_at=e.updated_at,
        events=[
            EndpointEvent(created_at=ev.created_at, kind=ev.kind, message=ev.message)
            for ev in (await events(session, e) if with_events else [])
        ],
    )


def key_to_api(row: EndpointKeyModel, secret: str | None = None) -> EndpointKey:
    fields = dict(
        id=row.id, name=row.name, prefix=row.prefix, created_at=row.created_at, revoked_at=row.revoked_at
    )
    return CreatedEndpointKey(**fields, key=secret) if secret else EndpointKey(**fields)
