"""Webhooks: per-project subscriptions, an outbox written in the transaction that causes an event, and the
signed, Slack-compatible payloads the notifier loop delivers.

Signature: `X-Dljobs-Signature: sha256=HEX`, the HMAC-SHA256 of `TIMESTAMP.BODY` with the webhook's secret,
and `X-Dljobs-Timestamp: TIMESTAMP` (unix seconds): receivers check both and refuse old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.models import (
    EndpointModel,
    JobModel,
    ProjectModel,
    WebhookDeliveryModel,
    WebhookModel,
)
from dljobs.controller.errors import not_found
from dljobs.spec.status import JobStatus

EVENTS = ("job.finished", "sweep.finished", "deployment.changed")
_ICON = {
    "SUCCEEDED": ":white_check_mark:",
    "FAILED": ":x:",
    "CANCELLED": ":no_entry_sign:",
    "TIMED_OUT": ":hourglass:",
}


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def create_webhook(
    session: AsyncSession, project: ProjectModel, url: str, events: list[str]
) -> WebhookModel:
    row = WebhookModel(project_id=project.id, url=url, secret=new_secret(), events=sorted(set(events)))
    session.add(row)
    await session.flush()
    return row


async def list_webhooks(session: AsyncSession, project: ProjectModel) -> list[WebhookModel]:
    return list(
        await session.scalars(
            select(WebhookModel).where(WebhookModel.project_id == project.id).order_by(WebhookModel.id)
        )
    )


async def delete_webhook(session: AsyncSession, project: ProjectModel, webhook_id: int) -> None:
    row = await session.get(WebhookModel, webhook_id)
    if row is None or row.project_id != project.id:
        raise not_found(f"webhook {webhook_id}")
    await session.delete(row)
    await session.flush()


async def deliveries(
    session: AsyncSession, webhook: WebhookModel, limit: int = 50
) -> list[WebhookDeliveryModel]:
    return list(
        await session.scalars(
            select(WebhookDeliveryModel)
            .where(WebhookDeliveryModel.webhook_id == webhook.id)
            .order_by(WebhookDeliveryModel.id.desc())
            .limit(limit)
        )
    )


async def enqueue(session: AsyncSession, project_id: int, event: str, payload: dict[str, Any]) -> int:
    """Queue `event` for every webhook of the project subscribed to it; returns how many."""
    hooks = await session.scalars(select(WebhookModel).where(WebhookModel.project_id == project_id))
    count = 0
    for hook in hooks:
        if event in hook.events:
            session.add(WebhookDeliveryModel(webhook_id=hook.id, event=event, payload=payload))
            count += 1
    return count


async def job_finished(session: AsyncSession, job: JobModel, status: JobStatus, reason: str) -> None:
    event = "sweep.finished" if job.kind == "sweep" else "job.finished"
    what = "sweep" if job.kind == "sweep" else "job"
    text = f"{_ICON.get(status.value, '')} dljobs {what} {job.id} ({job.name}) {status.value}: {reason}"
    payload = {
        "text": text.strip(),
        "event": event,
        "job": {
            "id": job.id,
            "name": job.name,
            "kind": job.kind,
            "status": status.value,
            "reason": reason,
            "attempt": job.attempt,
        },
    }
    await enqueue(session, job.project_id, event, payload)


async def deployment_changed(
    session: AsyncSession, endpoint: EndpointModel, change: str, message: str
) -> None:
    """An endpoint changed: created, rolled out, a canary, promoted, rolled back, ready, failed, deleted."""
    payload = {
        "text": f"dljobs endpoint {endpoint.name} {change.replace('_', ' ')}: {message}",
        "event": "deployment.changed",
        "endpoint": {
            "id": endpoint.id,
            "name": endpoint.name,
            "status": endpoint.status,
            "change": change,
            "message": message,
        },
    }
    await enqueue(session, endpoint.project_id, "deployment.changed", payload)


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
