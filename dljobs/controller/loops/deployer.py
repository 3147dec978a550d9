"""The deployer: makes Ray Serve run what the endpoints table says, and moves rollouts along.

Every controller flushes the measurements its gateway took. One controller at a time (the `deployer`
lease) then builds the declarative Serve config of every endpoint's versions (stable, canary, draining),
sends it when it changed (`PUT /api/serve/applications/`, outside any transaction), reads back each
application's status and applies what it learnt: a canary whose application runs starts taking traffic
(or all of it, for a plain switch), a canary past its error-rate or p99 thresholds is rolled back, a
draining version past its time is dropped, a deleted endpoint's row goes once its applications are gone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.leasing import hold_singleton
from dljobs.controller.db.models import EndpointModel, EndpointStatsModel, ModelVersionModel
from dljobs.controller.launchers.base import LaunchError
from dljobs.controller.launchers.serve import ServeClient
from dljobs.controller.loops.base import Loop
from dljobs.controller.services import endpoints as service
from dljobs.controller.services.gateway import Gateway, RateLimiter, flush_stats
from dljobs.controller.services.monitoring import canary_verdict, version_stats
from dljobs.controller.settings import Settings
from dljobs.spec.serving import ServingConfig

log = logging.getLogger("dljobs.deployer")
LEASE = "deployer"
IMPORT_PATH = "dljobs.workloads.serving.app:build"
STATS_RETENTION = timedelta(days=7)
STATUS_POLL = 10.0


class Deployer(Loop):
    name = "deployer"

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        serve: ServeClient,
        gateway: Gateway,
        owner: str,
    ) -> None:
        super().__init__(settings.serving.interval, settings.serving.enabled)
        self.settings = settings
        self.config = settings.serving
        self.sessions = sessions
        self.serve = serve
        self.gateway = gateway
        self.owner = owner
        self._applied: str | None = None  # the hash of the last config Serve accepted from us
        self._cleaned = 0.0
        self._statuses: dict[str, Any] = {}
        self._polled = 0.0

    async def stop(self) -> None:
        await super().stop()
        await self.serve.close()

    async def tick(self) -> None:
        await flush_stats(self.gateway)
        async with self.sessions() as session, session.begin():
            if not await hold_singleton(session, LEASE, self.owner, self.config.lease_seconds):
                self._applied = None  # whoever holds it now owns Serve's config
                return
            endpoints = list(await session.scalars(select(EndpointModel).order_by(EndpointModel.id)))
            versions = await self._versions(session, endpoints)
        if not endpoints and self._applied is None:
            return
        desired = self.serve_config(endpoints, versions)
        digest = hashlib.sha256(json.dumps(desired, sort_keys=True).encode()).hexdigest()
        changed = digest != self._applied
        # Serve's status is read while something waits on it, and every STATUS_POLL seconds otherwise:
        # each read costs the Ray dashboard (on the head, beside the replicas) real work
        waiting = any(
            e.status in ("deploying", "deleting") or (e.canary_version_id is not None and not e.canary_ready)
            for e in endpoints
        )
        try:
            if changed:
                await self.serve.apply(desired)
                self._applied = digest
            if changed or waiting or time.monotonic() - self._polled > STATUS_POLL:
                self._statuses = await self.serve.applications()
                self._polled = time.monotonic()
            statuses = self._statuses
        except LaunchError as exc:
            log.warning("deployer: %s", exc)
            self._applied = None
            await self._note_failure(endpoints, str(exc))
            return
        async with self.sessions() as session, session.begin():
            for endpoint in endpoints:
                row = await session.get(EndpointModel, endpoint.id, with_for_update=True)
                if row is None or row.generation != endpoint.generation:
                    continue  # changed since we read it: the next tick looks again
                await self._advance(session, row, statuses)
            if time.monotonic() - self._cleaned > 60:
                self._cleaned = time.monotonic()
                await RateLimiter.forget_old(session, int(time.time()) - 60)
                await session.execute(
                    delete(EndpointStatsModel).where(
                        EndpointStatsModel.period_end < utcnow() - STATS_RETENTION
                    )
                )

    @staticmethod
    async def _versions(
        session: AsyncSession, endpoints: list[EndpointModel]
    ) -> dict[int, ModelVersionModel]:
        ids = {
            v
            for e in endpoints
            for v in (e.stable_version_id, e.canary_version_id, e.draining_version_id)
            if v is not None
        }
        if not ids:
            return {}
        return {
            v.id: v
            for v in await session.scalars(select(ModelVersionModel).where(ModelVersionModel.id.in_(ids)))
        }

    def serve_config(
        self, endpoints: list[EndpointModel], versions: dict[int, ModelVersionModel]
    ) -> dict[str, Any]:
        """The whole declarative config: every application of every live endpoint."""
        now = utcnow()
        applications = []
        for endpoint in endpoints:
            if endpoint.status == "deleting":
                continue
            live = [endpoint.stable_version_id, endpoint.canary_version_id]
            if endpoint.draining_version_id and endpoint.draining_until and endpoint.draining_until > now:
                live.append(endpoint.draining_version_id)
            for version_id in dict.fromkeys(v for v in live if v is not None):
                version = versions.get(version_id)
                if version is not None:
                    applications.append(self._application(endpoint, version))
        return {
            "http_options": {"host": self.config.http_host, "port": self.config.http_port},
            "applications": applications,
        }

    def _application(self, endpoint: EndpointModel, version: ModelVersionModel) -> dict[str, Any]:
        config = ServingConfig.model_validate(endpoint.config)
        low, high = config.replica_bounds
        deployment: dict[str, Any] = {
            "name": "Model",
            "max_ongoing_requests": config.max_ongoing_requests,
            "max_queued_requests": config.max_queued_requests,
            "ray_actor_options": {"num_cpus": config.num_cpus, "num_gpus": config.num_gpus},
            "graceful_shutdown_timeout_s": 5,
        }
        if low == high:
            deployment["num_replicas"] = low
        else:
            deployment["autoscaling_config"] = {
                "min_replicas": low,
                "max_replicas": high,
                "target_ongoing_requests": config.target_ongoing_requests,
            }
        name = service.app_name(endpoint.name, version.id)
        return {
            "name": name,
            "route_prefix": f"/{name}",
            "import_path": IMPORT_PATH,
            "args": {
                "artifacts_uri": version.artifacts_uri,
                "max_batch_size": config.max_batch_size,
                "batch_wait_ms": config.batch_wait_ms,
                "max_inputs": config.max_inputs,
                "s3_endpoint_url": self.settings.storage.s3_endpoint_url,
            },
            "deployments": [deployment],
        }

    async def _advance(
        self, session: AsyncSession, endpoint: EndpointModel, statuses: dict[str, Any]
    ) -> None:
        now = utcnow()
        drain = self.config.drain_seconds

        def state(version_id: int | None) -> tuple[str, str]:
            if version_id is None:
                return "NONE", ""
            app = statuses.get(service.app_name(endpoint.name, version_id)) or {}
            return str(app.get("status") or "MISSING"), str(app.get("message") or "")

        if endpoint.status == "deleting":
            if not any(name.startswith(f"dljobs-{endpoint.name}-v") for name in statuses):
                await session.delete(endpoint)
                self.gateway.forget(endpoint.name)
            return
        changed = False
        if endpoint.draining_version_id and endpoint.draining_until and endpoint.draining_until <= now:
            endpoint.draining_version_id, endpoint.draining_until = None, None
            changed = True
        stable, stable_message = state(endpoint.stable_version_id)
        if endpoint.canary_version_id is not None:
            canary, message = state(endpoint.canary_version_id)
            if canary == "DEPLOY_FAILED":
                await service.roll_back(
                    session, endpoint, f"the new version failed to start: {message[-500:]}", drain
                )
                self.gateway.forget(endpoint.name)
                return
            if canary == "RUNNING" and not endpoint.canary_ready:
                if endpoint.canary_percent >= service.SWITCH:
                    endpoint.canary_ready = True
                    version = await session.get(ModelVersionModel, endpoint.canary_version_id)
                    described = await service.describe_version(session, version) if version else "?"
                    await service.switch_to_canary(session, endpoint, drain, f"serving {described}")
                    self.gateway.forget(endpoint.name)
                    return
                endpoint.canary_ready = True
                endpoint.generation += 1
                await service.add_event(
                    session, endpoint, "canary", f"the canary takes {endpoint.canary_percent:g}% of traffic"
                )
                changed = True
            elif endpoint.canary_ready:
                verdict = await self._judge(session, endpoint)
                if verdict is not None:
                    await service.roll_back(session, endpoint, verdict, drain)
                    self.gateway.forget(endpoint.name)
                    return
        if endpoint.stable_version_id is not None:
            if stable == "RUNNING" and endpoint.status != "ready":
                endpoint.status, endpoint.status_reason = "ready", "serving"
                await service.add_event(session, endpoint, "ready", "serving")
                changed = True
            elif stable in ("DEPLOY_FAILED", "UNHEALTHY") and endpoint.status != "failed":
                endpoint.status, endpoint.status_reason = "failed", f"{stable}: {stable_message[-500:]}"
                await service.add_event(session, endpoint, "failed", endpoint.status_reason)
                changed = True
        if changed:
            endpoint.updated_at = now
            self.gateway.forget(endpoint.name)

    async def _judge(self, session: AsyncSession, endpoint: EndpointModel) -> str | None:
        """Why the canary must be rolled back, or None while it behaves (or has too few requests yet)."""
        config = ServingConfig.model_validate(endpoint.config)
        since = endpoint.canary_started_at or (utcnow() - timedelta(seconds=self.config.stats_window))
        totals = await version_stats(session, endpoint.id, since, [endpoint.canary_version_id or 0])
        return canary_verdict(config, totals.get(endpoint.canary_version_id or 0))

    async def _note_failure(self, endpoints: list[EndpointModel], message: str) -> None:
        async with self.sessions() as session, session.begin():
            for endpoint in endpoints:
                row = await session.get(EndpointModel, endpoint.id)
                if row is not None and row.status == "deploying":
                    row.status_reason = f"waiting for Ray Serve: {message[:500]}"
