"""What running jobs report: live metric points, and the artifacts they leave in the store.

The store is the source of truth for artifacts: a job's `manifest.json` lists each file with its size and
SHA-256. Artifact rows are an index of it, filled from the job's reports or, if those were lost, from the
manifest when the job ends. A job whose manifest is missing or does not match the store never succeeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.base import from_unix_time, utcnow
from dljobs.controller.db.models import ArtifactModel, MetricModel
from dljobs.controller.errors import invalid
from dljobs.controller.services.launching import job_prefix
from dljobs.spec import api
from dljobs.storage import ArtifactStore, StorageError, check_key

MANIFEST = "manifest.json"


async def record_metrics(
    session: AsyncSession, job_id: int, points: list[api.MetricPoint], trial: int | None = None
) -> api.ReportedMetrics:
    now = utcnow()
    rows = []
    for point in points:
        if not math.isfinite(point.value):
            continue
        when = from_unix_time(point.ts) or now
        rows.append(
            MetricModel(
                job_id=job_id,
                trial_id=trial,
                name=point.name,
                step=point.step,
                epoch=point.epoch,
                value=point.value,
                reported_at=when,
            )
        )
    session.add_all(rows)
    await session.flush()
    return api.ReportedMetrics(accepted=len(rows), dropped=len(points) - len(rows))


async def metric_series(
    session: AsyncSession, job_id: int, names: list[str] | None = None, trial: int | None = None
) -> api.JobMetrics:
    """The job's own series, or with `trial` one trial's (a sweep's trials keep theirs apart)."""
    statement = (
        select(MetricModel)
        .where(MetricModel.job_id == job_id)
        .where(MetricModel.trial_id == trial if trial is not None else MetricModel.trial_id.is_(None))
        .order_by(MetricModel.name, MetricModel.step, MetricModel.id)
    )
    if names:
        # matched exactly; a name no metric can have (a NUL, a newline) matches nothing, without a query
        names = [name for name in names if _METRIC_NAME.fullmatch(name)]
        if not names:
            return api.JobMetrics(job_id=job_id, trial=trial, series={})
        statement = statement.where(MetricModel.name.in_(names))
    series: dict[str, list[api.SeriesPoint]] = defaultdict(list)
    for row in await session.scalars(statement):
        series[row.name].append(
            api.SeriesPoint(step=row.step, epoch=row.epoch, value=row.value, reported_at=row.reported_at)
        )
    return api.JobMetrics(job_id=job_id, trial=trial, series=dict(series))


_METRIC_NAME = re.compile(api.METRIC_NAME_PATTERN)


def _check_inside(store: ArtifactStore, job_id: int, record: api.ArtifactRecord) -> str:
    """The artifact's key under the job's prefix; a record pointing anywhere else is refused."""
    try:
        if check_key(record.name) != record.name:  # '/a', 'a//b', 'a/./b': not the path it will be read by
            raise ValueError(record.name)
        key = check_key(f"{job_prefix(job_id)}/{record.name}")
    except ValueError:
        raise invalid(
            "artifacts.name",
            f"'{record.name}' is not a path inside the job's artifacts",
            code="invalid_request",
        ) from None
    if record.uri != store.url_for(key):
        raise invalid(
            "artifacts.uri",
            f"'{record.uri}' is not where the job's artifact '{record.name}' lives",
            code="invalid_request",
        )
    return key


async def register_artifacts(
    session: AsyncSession, store: ArtifactStore, job_id: int, records: list[api.ArtifactRecord]
) -> list[ArtifactModel]:
    for record in records:
        _check_inside(store, job_id, record)
    existing = {
        a.name: a
        for a in await session.scalars(
            select(ArtifactModel).where(ArtifactModel.job_id == job_id, ArtifactModel.trial_id.is_(None))
        )
    }
    rows = []
    for record in records:
        row = existing.get(record.name)
        if row is None:
            row = ArtifactModel(job_id=job_id, name=record.name)
            session.add(row)
            existing[record.name] = row
        row.kind, row.uri, row.size, row.sha256, row.created_at = (
            record.kind,
            record.uri,
            record.size,
            record.sha256,
            utcnow(),
        )
        rows.append(row)
    await session.flush()
    return rows


async def list_artifacts(session: AsyncSession, job_id: int) -> list[ArtifactModel]:
    rows = await session.scalars(
        select(ArtifactModel).where(ArtifactModel.job_id == job_id).order_by(ArtifactModel.name)
    )
    return list(rows)


def artifact_to_api(row: ArtifactModel) -> api.Artifact:
    return api.Artifact(
        name=row.name, kind=row.kind, uri=row.uri, size=row.size, sha256=row.sha256, created_at=row.created_at
    )


async def read_manifest(store: ArtifactStore, job_id: int) -> tuple[list[api.ArtifactRecord] | None, str]:
    """The manifest checked against the store: (its records and its own, '') or (None, what is wrong)."""
    prefix = job_prefix(job_id)
    try:
        raw = await asyncio.to_thread(store.get_bytes, f"{prefix}/{MANIFEST}")
    except StorageError as exc:
        return None, f"no {MANIFEST} in {store.url_for(prefix)} ({exc.__class__.__name__})"
    try:
        document: Any = json.loads(raw)
        records = [api.ArtifactRecord.model_validate(item) for item in document["artifacts"]]
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"{MANIFEST} is not a valid manifest: {exc}"
    sizes = {o.key: o.size for o in await asyncio.to_thread(store.list, prefix)}
    manifest_key = f"{prefix}/{MANIFEST}"
    records.append(
        api.ArtifactRecord(
            name=MANIFEST,
            uri=store.url_for(manifest_key),
            size=len(raw),
            sha256=hashlib.sha256(raw).hexdigest(),
            kind="other",
        )
    )
    for record in records:
        key = f"{prefix}/{record.name}"
        if key not in sizes:
            return None, f"artifact {record.name} is listed in {MANIFEST} but missing from the store"
        if sizes[key] != record.size:
            return (
                None,
                f"artifact {record.name} has {sizes[key]} bytes in the store, {record.size} in {MANIFEST}",
            )
    return records, ""
