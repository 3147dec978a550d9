"""/api/v1/models: the model registry (register a job's model, list, show, promote)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from dljobs.controller.api.context import authenticated, runtime_of, transaction
from dljobs.controller.services import jobs as job_service
from dljobs.controller.services import registry
from dljobs.spec.api import API_PREFIX
from dljobs.spec.serving import ModelVersion, PromoteRequest, RegisteredModel, RegisterModelRequest

router = APIRouter(prefix=f"{API_PREFIX}/models", tags=["models"], dependencies=[Depends(authenticated)])
ProjectQuery = Annotated[str | None, Query(max_length=63)]


@router.get("", response_model=list[RegisteredModel])
async def list_models(request: Request, project: ProjectQuery = None) -> list[RegisteredModel]:
    async with transaction(request) as (session, principal):
        return await registry.list_models(session, principal, project)


@router.post("", response_model=ModelVersion, status_code=201)
async def register(request: Request, body: RegisterModelRequest) -> ModelVersion:
    """A new version of model `name` from a succeeded job (idempotent per job)."""
    store = runtime_of(request).store
    async with transaction(request) as (session, principal):
        job = await job_service.resolve_job_ref(session, principal, body.job)
        version = await registry.register_from_request(
            session, store, principal, job.job, body.name, body.trial, body.description
        )
        row = await registry.resolve_version(
            session, principal, f"{body.name}:{version.version}", job.project
        )
        return registry.version_to_api(row.version, row.model, row.project)


@router.get("/{name}", response_model=RegisteredModel)
async def show_model(request: Request, name: str, project: ProjectQuery = None) -> RegisteredModel:
    async with transaction(request) as (session, principal):
        return await registry.show_model(session, principal, name, project)


@router.get("/{name}/versions/{version}", response_model=ModelVersion)
async def show_version(
    request: Request, name: str, version: str, project: ProjectQuery = None
) -> ModelVersion:
    """One version with its model card; `version` is a number, latest, staging or production."""
    async with transaction(request) as (session, principal):
        row = await registry.resolve_version(session, principal, f"{name}:{version}", project)
        return registry.version_to_api(row.version, row.model, row.project, with_card=True)


@router.post("/{name}/versions/{version}/stage", response_model=ModelVersion)
async def promote(
    request: Request, name: str, version: str, body: PromoteRequest, project: ProjectQuery = None
) -> ModelVersion:
    async with transaction(request) as (session, principal):
        row = await registry.resolve_version(session, principal, f"{name}:{version}", project)
        row = await registry.promote(session, principal, row, body.stage)
        return registry.version_to_api(row.version, row.model, row.project)
