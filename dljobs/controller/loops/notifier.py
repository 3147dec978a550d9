"""The notifier: delivers the webhook outbox. Each delivery is leased, POSTed outside any transaction with a
short timeout, and retried with backoff; a slow or dead receiver never holds up the other loops."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from datetime import timedelta

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import WebhookDeliveryModel, WebhookModel
from dljobs.controller.loops.base import Loop
from dljobs.controller.services.webhooks import body_of, sign
from dljobs.controller.settings import Settings

log = logging.getLogger("dljobs.notifier")
D = WebhookDeliveryModel


class Notifier(Loop):
    name = "notifier"

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], owner: str) -> None:
        config = settings.notifier
        super().__init__(config.interval, config.enabled)
        self.config = config
        self.sessions = sessions
        self.owner = owner
        self._client: httpx.AsyncClient | None = None

    async def tick(self) -> None:
        claimed = await self._claim()
        if not claimed:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout, follow_redirects=False)
        await asyncio.gather(*(self._deliver(d, hook, lease) for d, hook, lease in claimed))

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.aclose()

    async def _claim(self) -> list[tuple[WebhookDeliveryModel, WebhookModel, str]]:
        now = utcnow()
        lease = f"{self.owner}-{secrets.token_hex(4)}"[:64]
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(D, WebhookModel)
                    .join(WebhookModel, WebhookModel.id == D.webhook_id)
                    .where(
                        D.status == "pending",
                        D.next_attempt_at <= now,
                        or_(D.lease_expires_at.is_(None), D.lease_expires_at < now),
                    )
                    .order_by(D.id)
                    .limit(self.config.batch_size)
                    .with_for_update(skip_locked=True, of=D)
                )
            ).all()
            for delivery, _ in rows:
                delivery.lease_owner = lease
                delivery.lease_expires_at = now + timedelta(seconds=self.config.timeout * 3)
        return [(delivery, hook, lease) for delivery, hook in rows]

    async def _deliver(self, delivery: WebhookDeliveryModel, hook: WebhookModel, lease: str) -> None:
        assert self._client is not None
        body = body_of(delivery.payload)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "dljobs-webhooks",
            "X-Dljobs-Event": delivery.event,
            "X-Dljobs-Delivery": str(delivery.id),
            "X-Dljobs-Timestamp": str(timestamp),
            "X-Dljobs-Signature": sign(hook.secret, timestamp, body),
        }
        error: str | None = None
        try:
            response = await self._client.post(hook.url, content=body, headers=headers)
            if response.status_code >= 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = delivery.attempts + 1
        if error is None:
            values = {"status": "delivered", "delivered_at": utcnow(), "last_error": None}
        elif attempts >= self.config.max_attempts:
            values = {"status": "failed", "last_error": error}
        else:
            delay = min(self.config.backoff_seconds * 2 ** (attempts - 1), 3600.0)
            values = {"next_attempt_at": utcnow() + timedelta(seconds=delay), "last_error": error}
        if self.metrics is not None:
            self.metrics.webhook_deliveries.labels(values.get("status", "retrying")).inc()
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(D)
                .where(D.id == delivery.id, D.lease_owner == lease)
                .values(attempts=attempts, lease_owner=None, lease_expires_at=None, **values)
                .execution_options(synchronize_session=False)
            )
        if error is not None:
            log.warning("webhook %s delivery %s: %s (attempt %s)", hook.id, delivery.id, error, attempts)
