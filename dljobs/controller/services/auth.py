"""Identity: tokens (hashed at rest), users, projects and who may see what.

A user sees only the jobs of projects they belong to; an admin sees everything. What a user may not see
answers 404, exactly like what does not exist.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import JobModel, MembershipModel, ProjectModel, TokenModel, UserModel
from dljobs.controller.errors import ApiError, conflict, forbidden, invalid, not_found, unauthorized
from dljobs.spec.base import is_name
from dljobs.spec.status import TERMINAL, JobStatus

USER_TOKEN_PREFIX = "dlj_"
JOB_TOKEN_PREFIX = "dljr_"  # reports for one job (metrics, artifacts), nothing else
JOB_TOKEN_GRACE = timedelta(minutes=5)  # a finished job may still register what it wrote last
DEFAULT_PROJECT = "default"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = USER_TOKEN_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(30)


@dataclass(frozen=True)
class Principal:
    user_id: int
    name: str
    admin: bool
    project_ids: frozenset[int]
    job_id: int | None = None  # set for a job's reporting token
    expires_at: datetime | None = None  # the token's expiry: no cache keeps the principal past it

    def sees_project(self, project_id: int) -> bool:
        return self.admin or project_id in self.project_ids

    def require_user(self) -> None:
        if self.job_id is not None:
            raise forbidden("a job's reporting token cannot do this")

    def require_admin(self) -> None:
        self.require_user()
        if not self.admin:
            raise forbidden()


def bearer_token(authorization: str | None, *, missing: str, placeholder: str) -> str:
    """The credential of an `Authorization: Bearer ...` header; 401 with `missing`, or saying the header is
    malformed, otherwise."""
    if not authorization:
        raise unauthorized(missing)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        raise unauthorized(f"malformed Authorization header: expected 'Bearer {placeholder}'")
    return token


async def authenticate(session: AsyncSession, authorization: str | None) -> Principal:
    """The principal behind an `Authorization: Bearer ...` header, or 401."""
    token = bearer_token(
        authorization,
        missing="missing token: send Authorization: Bearer <token> (dljobs login)",
        placeholder="<token>",
    )
    digest = hash_token(token)
    if token.startswith(JOB_TOKEN_PREFIX):
        return await _job_principal(session, digest)
    row = (
        await session.execute(
            select(TokenModel, UserModel)
            .join(UserModel, UserModel.id == TokenModel.user_id)
            .where(TokenModel.token_hash == digest)
        )
    ).first()
    if row is None:
        raise unauthorized("invalid token")
    token_row, user = row
    now = utcnow()
    if token_row.revoked_at is not None:
        raise unauthorized("this token was revoked")
    if token_row.expires_at is not None and token_row.expires_at <= now:
        raise unauthorized("this token has expired: create a new one (dljobs login)")
    projects = await session.scalars(
        select(MembershipModel.project_id).where(MembershipModel.user_id == user.id)
    )
    return Principal(user.id, user.name, user.is_admin, frozenset(projects), expires_at=token_row.expires_at)


async def _job_principal(session: AsyncSession, digest: str) -> Principal:
    row = (
        await session.execute(
            select(JobModel, UserModel)
            .join(UserModel, UserModel.id == JobModel.submitted_by)
            .where(JobModel.report_token_hash == digest)
        )
    ).first()
    if row is None:
        raise unauthorized("invalid token")
    job, user = row
    if JobStatus(job.status) in TERMINAL and job.finished_at and job.finished_at + JOB_TOKEN_GRACE < utcnow():
        raise unauthorized("this job's reporting token has expired")
    return Principal(user.id, user.name, False, frozenset({job.project_id}), job_id=job.id)


PRINCIPAL_CACHE_SECONDS = 5.0
PRINCIPAL_CACHE_SIZE = 10_000


class PrincipalCache:
    """Who a token belongs to, remembered for a few seconds so that each request costs one lookup at most.
    A revocation or membership change made through this controller clears it at once; other replicas
    notice within PRINCIPAL_CACHE_SECONDS."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, key: str) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, key: str, principal: Principal) -> None:
        if len(self._entries) >= PRINCIPAL_CACHE_SIZE:
            self._entries.clear()
        seconds = PRINCIPAL_CACHE_SECONDS
        if principal.expires_at is not None:
            seconds = min(seconds, (principal.expires_at - utcnow()).total_seconds())
        if seconds > 0:
            self._entries[key] = (principal, time.monotonic() + seconds)

    def clear(self) -> None:
        self._entries.clear()

    async def authenticate(
        self, sessions: async_sessionmaker[AsyncSession], authorization: str | None
    ) -> Principal:
        """`authenticate()` through the cache; a job's token is looked up each time (it ends with its job)."""
        key = hash_token(authorization) if authorization else ""
        principal = self.get(key) if key else None
        if principal is None:
            async with sessions() as session:
                principal = await authenticate(session, authorization)
            if principal.job_id is None:
                self.put(key, principal)
        return principal


# ---- users, projects, tokens --------------------------------------------------------------------------


async def project_by_name(session: AsyncSession, name: str) -> ProjectModel | None:
    if not is_name(name):  # nothing by that name can exist: no query (a NUL would fail one on PostgreSQL)
        return None
    return await session.scalar(select(ProjectModel).where(ProjectModel.name == name))


class ProjectIds:
    """Project ids by name, kept for good once read: a project is never renamed nor deleted. Only the id:
    quotas and members change, and are read where they matter."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    async def get(self, session: AsyncSession, name: str) -> int | None:
        if name not in self._ids:
            project = await project_by_name(session, name)
            if project is None:
                return None
            self._ids[name] = project.id
        return self._ids[name]


async def visible_project(session: AsyncSession, principal: Principal, name: str) -> ProjectModel:
    project = await project_by_name(session, name)
    if project is None or not principal.sees_project(project.id):
        raise not_found(f"project '{name}'")
    return project


async def user_by_name(session: AsyncSession, name: str) -> UserModel | None:
    if "\x00" in name:  # (the bootstrap admin's name comes from settings and need not be a Name)
        return None
    return await session.scalar(select(UserModel).where(UserModel.name == name))


async def create_project(
    session: AsyncSession, name: str, quota: dict[str, float | int | None]
) -> ProjectModel:
    if await project_by_name(session, name) is not None:
        raise conflict("already_exists", f"project '{name}' already exists")
    project = ProjectModel(name=name, **quota)
    session.add(project)
    await session.flush()
    return project


async def create_user(session: AsyncSession, name: str, admin: bool, projects: list[str]) -> UserModel:
    if await user_by_name(session, name) is not None:
        raise conflict("already_exists", f"user '{name}' already exists")
    user = UserModel(name=name, is_admin=admin)
    session.add(user)
    await session.flush()
    for project_name in dict.fromkeys(projects):  # a project named twice is one membership
        project = await project_by_name(session, project_name)
        if project is None:
            raise invalid("projects", f"no project '{project_name}'", code="invalid_request")
        session.add(MembershipModel(user_id=user.id, project_id=project.id))
    await session.flush()
    return user


async def add_member(session: AsyncSession, project: ProjectModel, user_name: str) -> None:
    user = await user_by_name(session, user_name)
    if user is None:
        raise not_found(f"user '{user_name}'")
    exists = await session.get(MembershipModel, (user.id, project.id))
    if exists is None:
        session.add(MembershipModel(user_id=user.id, project_id=project.id))
        await session.flush()


async def user_projects(session: AsyncSession, user_id: int) -> list[str]:
    rows = await session.scalars(
        select(ProjectModel.name)
        .join(MembershipModel, MembershipModel.project_id == ProjectModel.id)
        .where(MembershipModel.user_id == user_id)
        .order_by(ProjectModel.name)
    )
    return list(rows)


async def issue_token(
    session: AsyncSession, user: UserModel, name: str, expires_in: timedelta | None, token: str | None = None
) -> tuple[TokenModel, str]:
    """A new token for `user`; the secret is returned once and only its hash is kept."""
    secret = token or new_token()
    row = TokenModel(
        user_id=user.id,
        name=name,
        prefix=secret[:12],
        token_hash=hash_token(secret),
        expires_at=(utcnow() + expires_in) if expires_in else None,
    )
    session.add(row)
    await session.flush()
    return row, secret


async def revoke_token(session: AsyncSession, principal: Principal, token_id: int) -> TokenModel:
    row = await session.get(TokenModel, token_id)
    if row is None or (row.user_id != principal.user_id and not principal.admin):
        raise not_found(f"token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    return row


async def ensure_admin(session: AsyncSession, name: str, token: str, token_name: str) -> UserModel:
    """The bootstrap admin with the given token (idempotent): the cluster's first admin, or the local one."""
    user = await user_by_name(session, name)
    if user is None:
        user = UserModel(name=name, is_admin=True)
        session.add(user)
        await session.flush()
    elif not user.is_admin:
        raise ApiError(500, "bootstrap_conflict", f"user '{name}' exists and is not an admin")
    default = await ensure_project(session, DEFAULT_PROJECT)
    if await session.get(MembershipModel, (user.id, default.id)) is None:
        session.add(MembershipModel(user_id=user.id, project_id=default.id))
    digest = hash_token(token)
    if await session.scalar(select(TokenModel).where(TokenModel.token_hash == digest)) is None:
        await issue_token(session, user, token_name, None, token=token)
    await session.flush()
    return user


async def ensure_project(session: AsyncSession, name: str) -> ProjectModel:
    project = await project_by_name(session, name)
    if project is None:
        project = ProjectModel(name=name)
        session.add(project)
        await session.flush()
    return project


def expires_after(days: int | None) -> timedelta | None:
    return timedelta(days=days) if days else None


def token_is_live(row: TokenModel, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)
