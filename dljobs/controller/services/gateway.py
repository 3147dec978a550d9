"""The predict gateway: `POST /api/v1/endpoints/NAME/predict` through the controller to Ray Serve.

Per request: the caller's key (an endpoint key, or a user token of the endpoint's project), the endpoint's
routing (cached for `route_ttl` seconds per controller), the inputs checked against the model's schema,
the rate limit, a share of traffic for the canary, and the call to Serve with a time budget, joined with
other callers' under load (services.coalescing). Every answer is immediate: a full endpoint says 503 with
Retry-After, a limited caller 429 with Retry-After.

Rate limits hold across controllers: the counter lives in the database (`endpoint_rate_windows`, one
row per endpoint and second). A controller takes a block of the second's budget at a time (a compare-and-
set on the row) and spends it locally, so the database sees one write per block, and the sum granted by
all controllers never exceeds the limit.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.engine import lost_server
from dljobs.controller.db.models import (
    EndpointKeyModel,
    EndpointModel,
    EndpointStatsModel,
    ModelVersionModel,
    RateWindowModel,
    RegisteredModelModel,
)
from dljobs.controller.errors import ApiError, invalid, not_found, unauthorized
from dljobs.controller.services.auth import PrincipalCache, bearer_token, hash_token
from dljobs.controller.services.coalescing import Coalescer
from dljobs.controller.services.endpoints import SWITCH, app_name
from dljobs.controller.services.monitoring import StatsBook
from dljobs.controller.services.serve_http import ServeHTTP, ServeTransportError
from dljobs.controller.settings import ServingSettings
from dljobs.spec.inputs import InputError, InputSchema, check_inputs
from dljobs.spec.serving import ENDPOINT_KEY_PREFIX

KEY_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Target:
    version_id: int
    version: int
    model: str
    app: str
    schema: InputSchema
    card: dict[str, Any]


@dataclass
class Route:
    endpoint_id: int
    project_id: int
    name: str
    config: dict[str, Any]
    stable: Target | None
    canary: Target | None
    canary_percent: float
    draining: Target | None
    read_at: float

    def pick(self) -> Target | None:
        if self.canary is not None and (self.stable is None or random.random() * 100 < self.canary_percent):
            return self.canary
        return self.stable

    def fallback(self, tried: Target) -> Target | None:
        for other in (self.stable, self.canary, self.draining):
            if other is not None and other.app != tried.app:
                return other
        return None


class RateLimiter:
    """Fixed one-second windows counted in the database, spent in blocks (see the module's docstring)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._local: dict[int, tuple[int, int]] = {}  # endpoint -> (window, tokens left)
        self._locks: dict[int, asyncio.Lock] = {}

    async def acquire(self, endpoint_id: int, limit: float) -> float | None:
        """None when granted, else the seconds to wait."""
        now = time.time()
        window = int(now)
        held = self._local.get(endpoint_id)
        if held is not None and held[0] == window and held[1] > 0:
            self._local[endpoint_id] = (window, held[1] - 1)
            return None
        lock = self._locks.setdefault(endpoint_id, asyncio.Lock())
        async with lock:
            held = self._local.get(endpoint_id)
            if held is not None and held[0] == window and held[1] > 0:
                self._local[endpoint_id] = (window, held[1] - 1)
                return None
            budget = max(int(limit), 1)
            block = max(1, math.ceil(budget / 20))
            got = await self._claim(endpoint_id, window, budget, block)
            if got <= 0:
                self._local[endpoint_id] = (window, 0)
                return max(window + 1 - now, 0.05)
            self._local[endpoint_id] = (window, got - 1)
            return None

    async def _claim(self, endpoint_id: int, window: int, budget: int, block: int) -> int:
        table = RateWindowModel
        async with self.sessions() as session, session.begin():
            for _ in range(5):
                granted = await session.scalar(
                    select(table.granted).where(table.endpoint_id == endpoint_id, table.window == window)
                )
                if granted is None:
                    take = min(block, budget)
                    try:
                        async with session.begin_nested():
                            await session.execute(
                                insert(table).values(endpoint_id=endpoint_id, window=window, granted=take)
                            )
                        return take
                    except Exception:  # another controller inserted it first: read it again
                        continue
                take = min(block, budget - granted)
                if take <= 0:
                    return 0
                result = await session.execute(
                    update(table)
                    .where(table.endpoint_id == endpoint_id, table.window == window, table.granted == granted)
                    .values(granted=granted + take)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    return take
        return 0

    @staticmethod
    async def forget_old(session: AsyncSession, before: int) -> None:
        await session.execute(delete(RateWindowModel).where(RateWindowModel.window < before))


@dataclass
class Gateway:
    settings: ServingSettings
    sessions: async_sessionmaker[AsyncSession]
    principals: PrincipalCache
    stats: StatsBook = field(default_factory=StatsBook)
    stats_flush: asyncio.Lock = field(default_factory=asyncio.Lock)  # flushes take turns
    _routes: dict[str, Route] = field(default_factory=dict)
    _keys: dict[str, tuple[int, float]] = field(default_factory=dict)  # key hash -> (endpoint id, until)
    _inflight: dict[int, int] = field(default_factory=dict)
    _coalescers: dict[tuple[str, int, int], Coalescer] = field(default_factory=dict)
    _client: ServeHTTP | None = None
    limiter: RateLimiter | None = None

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.sessions)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def client(self) -> ServeHTTP:
        if self._client is None:
            self._client = ServeHTTP(self.settings.serve_url)
        return self._client

    def forget(self, name: str) -> None:
        self._routes.pop(name, None)

    # ---- routing ------------------------------------------------------------------------------------------

    async def route(self, name: str) -> Route:
        cached = self._routes.get(name)
        if cached is not None and time.monotonic() - cached.read_at < self.settings.route_ttl:
            return cached
        async with self.sessions() as session:
            endpoint = await session.scalar(select(EndpointModel).where(EndpointModel.name == name))
            if endpoint is None or endpoint.status == "deleting":
                self._routes.pop(name, None)
                raise not_found(f"endpoint '{name}'")
            canary_ready = endpoint.canary_ready and endpoint.canary_version_id is not None
            draining = (
                endpoint.draining_version_id
                if endpoint.draining_until and endpoint.draining_until > utcnow()
                else None
            )
            targets = await self._targets(
                session,
                endpoint.name,
                [
                    v
                    for v in (
                        endpoint.stable_version_id,
                        endpoint.canary_version_id if canary_ready else None,
                        draining,
                    )
                    if v
                ],
            )
        route = Route(
            endpoint_id=endpoint.id,
            project_id=endpoint.project_id,
            name=endpoint.name,
            config=endpoint.config,
            stable=targets.get(endpoint.stable_version_id or -1),
            canary=targets.get(endpoint.canary_version_id or -1) if canary_ready else None,
            canary_percent=100.0 if endpoint.canary_percent >= SWITCH else endpoint.canary_percent,
            draining=targets.get(draining or -1),
            read_at=time.monotonic(),
        )
        self._routes[name] = route
        return route

    @staticmethod
    async def _targets(session: AsyncSession, endpoint: str, version_ids: list[int]) -> dict[int, Target]:
        if not version_ids:
            return {}
        rows = (
            await session.execute(
                select(ModelVersionModel, RegisteredModelModel.name)
                .join(RegisteredModelModel, RegisteredModelModel.id == ModelVersionModel.model_id)
                .where(ModelVersionModel.id.in_(version_ids))
            )
        ).all()
        return {
            v.id: Target(
                v.id, v.version, model, app_name(endpoint, v.id), InputSchema.from_card(v.card), v.card
            )
            for v, model in rows
        }

    # ---- who may call -------------------------------------------------------------------------------------

    async def authorize(self, name: str, authorization: str | None) -> Route:
        """The caller first, then the endpoint: a missing, malformed, unknown or revoked credential is 401
        whether or not the endpoint exists; an endpoint the caller may not use is 404, as a missing one is
        (an endpoint key is good for its own endpoint; a user token for its projects' endpoints)."""
        token = bearer_token(
            authorization,
            missing="missing key: send Authorization: Bearer <endpoint key>",
            placeholder="<key>",
        )
        digest = hash_token(token)
        if token.startswith(ENDPOINT_KEY_PREFIX):
            cached = self._keys.get(digest)
            if cached is None or cached[1] < time.monotonic():
                async with self.sessions() as session:
                    row = await session.scalar(
                        select(EndpointKeyModel.endpoint_id).where(
                            EndpointKeyModel.key_hash == digest, EndpointKeyModel.revoked_at.is_(None)
                        )
                    )
                cached = (row if row is not None else -1, time.monotonic() + KEY_CACHE_SECONDS)
                if len(self._keys) > 10_000:
                    self._keys.clear()
                self._keys[digest] = cached
            if cached[0] == -1:
                raise unauthorized("invalid or revoked endpoint key")
            route = await self.route(name)
            if cached[0] != route.endpoint_id:
                raise not_found(f"endpoint '{name}'")
            return route
        principal = await self.principals.authenticate(self.sessions, authorization)
        route = await self.route(name)
        if principal.job_id is not None or not principal.sees_project(route.project_id):
            raise not_found(f"endpoint '{name}'")
        return route

    def revoke_cached_keys(self) -> None:
        self._keys.clear()

    # ---- the call -----------------------------------------------------------------------------------------

    async def predict(self, route: Route, body: Any) -> dict[str, Any]:
        config = route.config
        target = route.pick()
        if target is None:
            raise ApiError(
                503, "not_ready", f"endpoint '{route.name}' is not serving yet", headers={"Retry-After": "2"}
            )
        book = self.stats.of(route.endpoint_id, target.version_id, target.card)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(body, dict) or set(body) != {"inputs"}:
            book.rejected += 1
            raise invalid("inputs", 'expected a JSON object {"inputs": [...]}', code="invalid_input")
        try:
            checked = check_inputs(target.schema, inputs, int(config.get("max_inputs", 256)))
        except InputError as exc:
            book.rejected += 1
            raise invalid(exc.field, exc.message, code="invalid_input") from None
        limit = config.get("rate_limit")
        if limit:
            assert self.limiter is not None
            wait = await self.limiter.acquire(route.endpoint_id, float(limit))
            if wait is not None:
                book.rejected += 1
                raise ApiError(
                    429,
                    "rate_limited",
                    f"endpoint '{route.name}' allows {limit:g} requests per second",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        _, high = _bounds(config)
        capacity = high * (
            int(config.get("max_ongoing_requests", 64)) + int(config.get("max_queued_requests", 256))
        )
        inflight = self._inflight.get(route.endpoint_id, 0)
        if inflight >= capacity:
            book.rejected += 1
            raise ApiError(
                503, "overloaded", f"endpoint '{route.name}' is at capacity", headers={"Retry-After": "1"}
            )
        self._inflight[route.endpoint_id] = inflight + 1
        started = time.perf_counter()
        timeout = float(config.get("timeout_s", 30))

        async def send(inputs: list[Any]) -> tuple[list[Any], Target]:
            return await self._predictions(route, target, inputs, timeout)

        try:
            try:
                predictions, served_by = await self._coalescer(target, config).call(checked, send, timeout)
            except TimeoutError:
                raise _timed_out(timeout) from None
        except ApiError as exc:
            if exc.status >= 500:
                self.stats.of(route.endpoint_id, target.version_id, target.card).record_error(
                    (time.perf_counter() - started) * 1000
                )
            raise
        finally:
            self._inflight[route.endpoint_id] -= 1
        elapsed = (time.perf_counter() - started) * 1000
        self.stats.of(route.endpoint_id, served_by.version_id, served_by.card).record(
            elapsed, checked, predictions
        )
        return {"model": served_by.model, "version": served_by.version, "predictions": predictions}

    def _coalescer(self, target: Target, config: dict[str, Any]) -> Coalescer:
        """Calls to the version's application in flight at once before callers' inputs are joined: two per
        replica, or with autoscaling enough for Serve to see the load that scales it to its upper bound.
        Joined calls carry up to `max_batch_size` inputs (1: batching off, nothing is joined)."""
        low, high = _bounds(config)
        per_replica = math.ceil(float(config.get("target_ongoing_requests", 8))) if high > low else 2
        batch = min(int(config.get("max_batch_size", 32)), int(config.get("max_inputs", 256)))
        window = high * per_replica if batch > 1 else 1_000_000
        key = (target.app, window, batch)
        coalescer = self._coalescers.get(key)
        if coalescer is None:
            coalescer = self._coalescers[key] = Coalescer(window, batch, _caused_by_inputs)
        return coalescer

    async def _predictions(
        self, route: Route, target: Target, inputs: list[Any], timeout: float
    ) -> tuple[list[Any], Target]:
        answer, served_by = await self._call(route, target, {"inputs": inputs}, timeout)
        predictions = answer.get("predictions") if isinstance(answer, dict) else None
        if not isinstance(predictions, list) or len(predictions) != len(inputs):
            raise ApiError(502, "model_error", "the model did not answer one prediction per input")
        return predictions, served_by

    async def _call(
        self, route: Route, target: Target, payload: dict[str, Any], timeout: float
    ) -> tuple[dict[str, Any], Target]:
        """POST to the version's Serve application; an application that is gone (a switch this controller
        has not seen yet) is retried once on another version of the endpoint."""
        client = self.client()
        body = json.dumps(payload, separators=(",", ":")).encode()
        for attempt in range(2):
            try:
                status, answer = await client.post(f"/{target.app}", body, timeout)
            except TimeoutError:
                raise _timed_out(timeout) from None
            except ServeTransportError as exc:
                if attempt == 0 and (other := route.fallback(target)) is not None:
                    target = other
                    continue
                raise ApiError(
                    503, "unavailable", f"Ray Serve is unreachable: {exc}", headers={"Retry-After": "2"}
                ) from None
            if status == 200:
                return json.loads(answer), target
            if status == 404 and attempt == 0:
                self.forget(route.name)
                fresh = await self.route(route.name)
                other = fresh.pick()
                if other is not None and other.app != target.app:
                    target = other
                    continue
            if status == 422:
                detail = _error_of(answer)
                raise invalid(
                    detail.get("field") or "inputs",
                    detail.get("message") or "invalid inputs",
                    code="invalid_input",
                )
            if status in (503, 429):
                raise ApiError(
                    503, "overloaded", f"endpoint '{route.name}' is at capacity", headers={"Retry-After": "1"}
                )
            raise ApiError(502, "model_error", f"the model failed ({status})")
        raise ApiError(
            503, "unavailable", "no version of the endpoint answered", headers={"Retry-After": "1"}
        )


def _timed_out(timeout: float) -> ApiError:
    return ApiError(
        503, "timeout", f"the model did not answer within {timeout:g}s", headers={"Retry-After": "1"}
    )


def _caused_by_inputs(error: Exception) -> bool:
    """Whether a joined call's failure may come from one caller's inputs (then each is tried alone)."""
    return isinstance(error, ApiError) and error.code in ("invalid_input", "model_error")


def _bounds(config: dict[str, Any]) -> tuple[int, int]:
    from dljobs.spec.serving import parse_replicas

    return parse_replicas(config.get("replicas", "1"))


def _error_of(answer: bytes) -> dict[str, Any]:
    try:
        error = json.loads(answer).get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


async def flush_stats(gateway: Gateway) -> int:
    """Write what this controller measured since the last flush (insert-only rows), committed when this
    returns. Flushes take turns, so a read after one sees every figure measured before it, even when another
    flush had drained the book and was still writing. Rows of an endpoint deleted meanwhile are dropped; rows
    the database was unreachable for are kept for the next flush."""
    async with gateway.stats_flush:
        rows = gateway.stats.drain()
        if not rows:
            return 0
        try:
            try:
                await _insert_stats(gateway.sessions, rows)
            except IntegrityError:
                rows = await _of_existing_endpoints(gateway.sessions, rows)
                if rows:
                    await _insert_stats(gateway.sessions, rows)
        except (DBAPIError, OSError) as exc:
            if lost_server(exc):
                gateway.stats.put_back(rows)
            raise
        return len(rows)


async def _insert_stats(sessions: async_sessionmaker[AsyncSession], rows: list[dict[str, Any]]) -> None:
    now = utcnow()
    async with sessions() as session, session.begin():
        session.add_all(EndpointStatsModel(period_end=now, **row) for row in rows)


async def _of_existing_endpoints(
    sessions: async_sessionmaker[AsyncSession], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    ids = {row["endpoint_id"] for row in rows}
    async with sessions() as session:
        existing = set(await session.scalars(select(EndpointModel.id).where(EndpointModel.id.in_(ids))))
    return [row for row in rows if row["endpoint_id"] in existing]
