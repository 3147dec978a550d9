"""What endpoints measure: request counts, errors, latency histograms, the distribution of predictions and
of inputs, kept per controller in memory (`StatsBook`), flushed to `endpoint_stats` every deployer tick,
and summed over a window for `dljobs endpoints show` and the canary's judgement.

Drift is the population stability index of each summarised input feature against the training data's
deciles (the model card's `data.feature_summary`): PSI = sum over bins of (a - e) * ln(a / e), with `e`
the training share and `a` the served share. Below 0.1 is stable; above 0.25 the inputs have moved.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import EndpointStatsModel, ModelVersionModel
from dljobs.spec.serving import ServingConfig, VersionStats

# latency histogram bucket upper bounds, in milliseconds
BUCKETS = (
    1,
    2,
    3,
    5,
    7,
    10,
    15,
    20,
    30,
    50,
    75,
    100,
    150,
    200,
    300,
    500,
    750,
    1000,
    2000,
    5000,
    10000,
    30000,
)
PSI_FLOOR = 1e-4
MAX_DRIFT_FEATURES = 16


def _feature_plan(card: dict[str, Any]) -> list[tuple[str, list[int], list[float]]]:
    """(name, flat indices to read, inner bin edges) for each feature the card summarises."""
    summary = (card.get("data") or {}).get("feature_summary") or {}
    kind = summary.get("kind")
    shape = (card.get("input") or {}).get("shape") or []
    plan = []
    for feature in (summary.get("features") or [])[:MAX_DRIFT_FEATURES]:
        bins = feature.get("bins") or []
        if len(bins) < 2:
            continue
        index = int(feature.get("index", 0))
        if kind == "tabular":
            indices = [index]
        elif kind == "image" and len(shape) == 3:
            plane = shape[1] * shape[2]
            indices = list(range(index * plane, (index + 1) * plane, max(plane // 16, 1)))
        else:
            continue
        plan.append((str(feature.get("name", index)), indices, [float(b) for b in bins[1:-1]]))
    return plan


@dataclass
class VersionBook:
    """One version's measurements on this controller since the last flush."""

    endpoint_id: int
    version_id: int
    plan: list[tuple[str, list[int], list[float]]]
    requests: int = 0
    errors: int = 0
    rejected: int = 0
    inputs: int = 0
    latency: dict[str, int] = field(default_factory=dict)
    predictions: dict[str, int] = field(default_factory=dict)
    features: dict[str, list[int]] = field(default_factory=dict)

    def _latency(self, ms: float) -> None:
        index = bisect.bisect_left(BUCKETS, ms)
        key = str(BUCKETS[index]) if index < len(BUCKETS) else "inf"
        self.latency[key] = self.latency.get(key, 0) + 1

    def record(self, ms: float, inputs: list[Any], predictions: list[Any]) -> None:
        self.requests += 1
        self.inputs += len(inputs)
        self._latency(ms)
        for prediction in predictions:
            label = (
                str(prediction.get("class"))
                if isinstance(prediction, dict) and "class" in prediction
                else "value"
            )
            self.predictions[label] = self.predictions.get(label, 0) + 1
        for name, indices, edges in self.plan:
            counts = self.features.setdefault(name, [0] * (len(edges) + 1))
            for item in inputs:
                if not isinstance(item, list):
                    continue
                for i in indices:
                    if i < len(item):
                        counts[bisect.bisect_right(edges, item[i])] += 1

    def record_error(self, ms: float) -> None:
        self.requests += 1
        self.errors += 1
        self._latency(ms)

    def row(self) -> dict[str, Any]:
        return {
            "endpoint_id": self.endpoint_id,
            "version_id": self.version_id,
            "requests": self.requests,
            "errors": self.errors,
            "rejected": self.rejected,
            "inputs": self.inputs,
            "latency": self.latency,
            "predictions": self.predictions,
            "features": self.features,
        }


class StatsBook:
    """What this controller measured since its last flush, per endpoint version, and rows a flush could not
    write (the database was unreachable), written by the next one."""

    MAX_UNWRITTEN = 10_000

    def __init__(self) -> None:
        self._books: dict[tuple[int, int], VersionBook] = {}
        self._unwritten: list[dict[str, Any]] = []

    def of(self, endpoint_id: int, version_id: int, card: dict[str, Any]) -> VersionBook:
        book = self._books.get((endpoint_id, version_id))
        if book is None:
            book = VersionBook(endpoint_id, version_id, _feature_plan(card))
            self._books[(endpoint_id, version_id)] = book
        return book

    def drain(self) -> list[dict[str, Any]]:
        books, self._books = self._books, {}
        unwritten, self._unwritten = self._unwritten, []
        return unwritten + [b.row() for b in books.values() if b.requests or b.rejected]

    def put_back(self, rows: list[dict[str, Any]]) -> None:
        """Drained rows that were not written: the next drain returns them first (the newest are dropped past
        MAX_UNWRITTEN, during a long outage)."""
        self._unwritten = (rows + self._unwritten)[: self.MAX_UNWRITTEN]


def percentile(histogram: dict[str, int], q: float) -> float | None:
    total = sum(histogram.values())
    if total == 0:
        return None
    wanted = q * total
    seen = 0
    for bound in [*BUCKETS, math.inf]:
        seen += histogram.get(str(bound) if bound != math.inf else "inf", 0)
        if seen >= wanted:
            return float(bound)
    return math.inf


def psi(expected: list[float], counts: list[int]) -> float | None:
    total = sum(counts)
    if total == 0 or len(expected) != len(counts):
        return None
    value = 0.0
    for e, c in zip(expected, counts, strict=True):
        e = max(e, PSI_FLOOR)
        a = max(c / total, PSI_FLOOR)
        value += (a - e) * math.log(a / e)
    return value


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, list):
            current = into.setdefault(key, [0] * len(value))
            for i, v in enumerate(value[: len(current)]):
                current[i] += v
        else:
            into[key] = into.get(key, 0) + value


async def version_stats(
    session: AsyncSession, endpoint_id: int, since: datetime, version_ids: Iterable[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Measurements of each version since `since`, summed over every controller."""
    statement = select(EndpointStatsModel).where(
        EndpointStatsModel.endpoint_id == endpoint_id, EndpointStatsModel.period_end >= since
    )
    if version_ids is not None:
        statement = statement.where(EndpointStatsModel.version_id.in_(list(version_ids)))
    totals: dict[int, dict[str, Any]] = {}
    for row in await session.scalars(statement):
        total = totals.setdefault(
            row.version_id or 0,
            {
                "requests": 0,
                "errors": 0,
                "rejected": 0,
                "inputs": 0,
                "latency": {},
                "predictions": {},
                "features": {},
            },
        )
        for key in ("requests", "errors", "rejected", "inputs"):
            total[key] += getattr(row, key)
        _merge(total["latency"], row.latency)
        _merge(total["predictions"], row.predictions)
        _merge(total["features"], row.features)
    return totals


def canary_verdict(config: ServingConfig, total: dict[str, Any] | None) -> str | None:
    """Why a canary must be rolled back, from its figures over the window (`version_stats`), or None while
    it behaves or has had fewer than `min_requests` requests to judge it by."""
    if total is None or total["requests"] < config.min_requests:
        return None
    rate = total["errors"] / total["requests"]
    if rate > config.max_error_rate:
        return (
            f"rolled back: the canary's error rate {rate:.1%} over {total['requests']} requests "
            f"is above {config.max_error_rate:.1%}"
        )
    p99 = percentile(total["latency"], 0.99)
    if p99 is not None and p99 > config.max_p99_ms:
        return f"rolled back: the canary's p99 latency {p99:g} ms is above {config.max_p99_ms:g} ms"
    return None


def summarise(version: int | None, total: dict[str, Any], card: dict[str, Any]) -> VersionStats:
    requests = total["requests"]
    predicted = sum(total["predictions"].values())
    drift: dict[str, float] = {}
    summary = {
        f.get("name"): f for f in ((card.get("data") or {}).get("feature_summary") or {}).get("features", [])
    }
    for name, counts in total["features"].items():
        expected = (summary.get(name) or {}).get("fractions")
        if expected is not None and (value := psi(expected, counts)) is not None:
            drift[name] = round(value, 4)
    return VersionStats(
        version=version,
        requests=requests,
        errors=total["errors"],
        rejected=total["rejected"],
        error_rate=total["errors"] / requests if requests else 0.0,
        latency_ms={f"p{int(q * 100)}": percentile(total["latency"], q) for q in (0.5, 0.9, 0.99)},
        predictions={k: v / predicted for k, v in sorted(total["predictions"].items())} if predicted else {},
        drift_psi=drift,
        drift_psi_max=max(drift.values()) if drift else None,
    )


async def endpoint_stats(session: AsyncSession, endpoint_id: int, window_s: int) -> list[VersionStats]:
    totals = await version_stats(session, endpoint_id, utcnow() - timedelta(seconds=window_s))
    if not totals:
        return []
    versions = {
        v.id: v
        for v in await session.scalars(
            select(ModelVersionModel).where(ModelVersionModel.id.in_(list(totals)))
        )
    }
    out = []
    for version_id, total in sorted(totals.items()):
        version = versions.get(version_id)
        out.append(summarise(version.version if version else None, total, version.card if version else {}))
    return out
