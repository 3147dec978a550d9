"""Leases: a loop claims rows (or a named singleton) for a while, works outside any transaction, then
applies its results with updates guarded by the lease token. Two controllers never act on one row at once.

On PostgreSQL the claim uses `SELECT ... FOR UPDATE SKIP LOCKED`; on SQLite the write transaction
(BEGIN IMMEDIATE) already serialises claimers. Work that must see every other controller's claims
(planning the queue) runs in a transaction that first takes `serialize`'s lock.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, TextClause, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import JobModel, LeaseModel


def lease_free() -> ColumnElement[bool]:
    return or_(JobModel.lease_expires_at.is_(None), JobModel.lease_expires_at < utcnow())


async def claim_jobs(
    session: AsyncSession, where: list[ColumnElement[bool]], owner: str, seconds: float, limit: int
) -> list[tuple[JobModel, str]]:
    """Lease up to `limit` jobs matching `where` whose lease is free; returns (job, lease token) pairs."""
    rows = await session.scalars(
        select(JobModel)
        .where(*where, lease_free())
        .order_by(JobModel.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = []
    expires = utcnow() + timedelta(seconds=seconds)
    for job in rows.all():
        token = secrets.token_hex(16)
        job.lease_owner, job.lease_token, job.lease_expires_at = owner, token, expires
        claimed.append((job, token))
    await session.flush()
    return claimed


async def guarded_update(session: AsyncSession, job_id: int, held_lease: str, **values: Any) -> bool:
    """Write `values` only if the row is still under our lease."""
    result = await session.execute(
        update(JobModel)
        .where(JobModel.id == job_id, JobModel.lease_token == held_lease)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def confirm_launch(session: AsyncSession, job_id: int, held_lease: str) -> bool:
    """Ray has the job's launch: record when, and give up the lease."""
    return await guarded_update(
        session,
        job_id,
        held_lease,
        launched_at=utcnow(),
        lease_owner=None,
        lease_token=None,
        lease_expires_at=None,
    )


async def release(session: AsyncSession, job_id: int, held_lease: str) -> bool:
    return await guarded_update(
        session, job_id, held_lease, lease_owner=None, lease_token=None, lease_expires_at=None
    )


async def hold_singleton(session: AsyncSession, name: str, owner: str, seconds: float) -> bool:
    """Take or renew the named lease; False while another owner holds it."""
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    current = await session.get(LeaseModel, name, with_for_update=True)
    if current is None:
        session.add(LeaseModel(name=name, owner=owner, expires_at=expires))
        await session.flush()
        return True
    if current.owner != owner and current.expires_at > now:
        return False
    current.owner, current.expires_at = owner, expires
    await session.flush()
    return True


def advisory_lock(name: str) -> TextClause:
    """PostgreSQL: wait for the transaction-scoped advisory lock `name` (a stable signed 64-bit key)."""
    digest = hashlib.blake2b(f"dljobs.{name}".encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    return text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=key)


async def serialize(session: AsyncSession, name: str) -> None:
    """Wait for the lock `name` until this transaction ends: transactions that take it run one at a time,
    each seeing what the one before it committed.

    PostgreSQL: a transaction-scoped advisory lock (statements after it read a fresh snapshot under READ
    COMMITTED). SQLite: beginning the transaction is enough, its BEGIN IMMEDIATE takes the database's write
    lock.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await session.execute(advisory_lock(name))
