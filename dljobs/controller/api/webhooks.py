"""/api/v1/projects/{name}/webhooks: where a project's events are posted (admins manage them: the
controller makes outbound requests to these URLs)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from dljobs.controller.api.context import authenticated, runtime_of, transaction
from dljobs.controller.db.models import WebhookModel
from dljobs.controller.errors import not_found
from dljobs.controller.services import auth
from dljobs.controller.services import webhooks as service
from dljobs.spec.api import API_PREFIX, MAX_ID

router = APIRouter(
    prefix=f"{API_PREFIX}/projects/{{name}}/webhooks",
    tags=["webhooks"],
    dependencies=[Depends(authenticated)],
)
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID)]
Event = Literal["job.finished", "sweep.finished", "deployment.changed"]


class CreateWebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: HttpUrl
    events: Annotated[list[Event], Field(min_length=1)] = ["job.finished", "sweep.finished"]


class Webhook(BaseModel):
    id: int
    project: str
    url: str
    events: list[str]


class CreatedWebhook(Webhook):
    secret: str = Field(description="the HMAC-SHA256 signing key; shown once")


class Delivery(BaseModel):
    id: int
    event: str
    status: str
    attempts: int
    last_error: str | None


def _to_api(row: WebhookModel, project: str) -> Webhook:
    return Webhook(id=row.id, project=project, url=row.url, events=row.events)


@router.post("", response_model=CreatedWebhook, status_code=201)
async def create(request: Request, name: str, body: CreateWebhookRequest) -> CreatedWebhook:
    async with transaction(request) as (session, principal):
        principal.require_admin()
        project = await auth.visible_project(session, principal, name)
        row = await service.create_webhook(session, project, str(body.url), list(body.events))
        return CreatedWebhook(**_to_api(row, project.name).model_dump(), secret=row.secret)


@router.get("", response_model=list[Webhook])
async def list_(request: Request, name: str) -> list[Webhook]:
    async with transaction(request) as (session, principal):
        principal.require_admin()
        project = await auth.visible_project(session, principal, name)
        return [_to_api(row, project.name) for row in await service.list_webhooks(session, project)]


@router.get("/{webhook_id}/deliveries", response_model=list[Delivery])
async def deliveries(request: Request, name: str, webhook_id: WebhookId) -> list[Delivery]:
    async with transaction(request) as (session, principal):
        principal.require_admin()
        project = await auth.visible_project(session, principal, name)
        hook = await session.get(WebhookModel, webhook_id)
        if hook is None or hook.project_id != project.id:
            raise not_found(f"webhook {webhook_id}")
        rows = await service.deliveries(session, hook)
        return [
            Delivery(id=d.id, event=d.event, status=d.status, attempts=d.attempts, last_error=d.last_error)
            for d in rows
        ]


@router.delete("/{webhook_id}", status_code=204)
async def delete(request: Request, name: str, webhook_id: WebhookId) -> Response:
    async with transaction(request) as (session, principal):
        principal.require_admin()
        project = await auth.visible_project(session, principal, name)
        await service.delete_webhook(session, project, webhook_id)
    runtime_of(request).notifier.wake()
    return Response(status_code=204)
