"""/api/v1: whoami, projects (with quotas and members), users and tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from sqlalchemy import select

from dljobs.controller.api.context import authenticated, runtime_of, transaction
from dljobs.controller.db.base import utcnow
from dljobs.controller.db.models import ProjectModel, TokenModel, UserModel
from dljobs.controller.errors import not_found
from dljobs.controller.services import auth
from dljobs.controller.services.converters import project_to_api, token_to_api, user_to_api
from dljobs.spec import api
from dljobs.spec.api import API_PREFIX

router = APIRouter(prefix=API_PREFIX, tags=["identity"], dependencies=[Depends(authenticated)])


@router.get("/whoami", response_model=api.WhoAmI)
async def whoami(request: Request) -> api.WhoAmI:
    async with transaction(request) as (session, principal):
        principal.require_user()
        return api.WhoAmI(
            user=principal.name,
            admin=principal.admin,
            projects=await auth.user_projects(session, principal.user_id),
        )


@router.get("/projects", response_model=list[api.Project])
async def list_projects(request: Request) -> list[api.Project]:
    async with transaction(request) as (session, principal):
        principal.require_user()
        statement = select(ProjectModel).order_by(ProjectModel.name)
        if not principal.admin:
            statement = statement.where(ProjectModel.id.in_(principal.project_ids))
        return [project_to_api(p) for p in await session.scalars(statement)]


@router.post("/projects", response_model=api.Project, status_code=201)
async def create_project(request: Request, body: api.CreateProjectRequest) -> api.Project:
    async with transaction(request) as (session, principal):
        principal.require_admin()
        project = await auth.create_project(session, body.name, body.quota.model_dump())
        return project_to_api(project)


@router.patch("/projects/{name}", response_model=api.Project)
async def update_project(request: Request, name: str, body: api.UpdateProjectRequest) -> api.Project:
    async with transaction(request) as (session, principal):
        principal.require_admin()
        project = await auth.visible_project(session, principal, name)
        for key, value in body.quota.model_dump().items():
            setattr(project, key, value)
        await session.flush()
        result = project_to_api(project)
    runtime_of(request).scheduler.wake()
    return result


@router.post("/projects/{name}/members", status_code=204)
async def add_member(request: Request, name: str, body: api.AddMemberRequest) -> Response:
    async with transaction(request) as (session, principal):
        principal.require_admin()
        project = await auth.visible_project(session, principal, name)
        await auth.add_member(session, project, body.user)
    runtime_of(request).principals.clear()
    return Response(status_code=204)


@router.post("/users", response_model=api.User, status_code=201)
async def create_user(request: Request, body: api.CreateUserRequest) -> api.User:
    async with transaction(request) as (session, principal):
        principal.require_admin()
        user = await auth.create_user(session, body.name, body.admin, body.projects)
        return user_to_api(user, sorted(set(body.projects)))


@router.get("/users", response_model=list[api.User])
async def list_users(request: Request) -> list[api.User]:
    async with transaction(request) as (session, principal):
        principal.require_admin()
        users = list(await session.scalars(select(UserModel).order_by(UserModel.name)))
        return [user_to_api(u, await auth.user_projects(session, u.id)) for u in users]


@router.post("/tokens", response_model=api.CreatedToken, status_code=201)
async def create_token(request: Request, body: api.CreateTokenRequest) -> api.CreatedToken:
    """A new token for yourself (or, as an admin, for another user). Its secret is shown only here."""
    async with transaction(request) as (session, principal):
        principal.require_user()
        user = await session.get(UserModel, principal.user_id)
        if body.user is not None and body.user != principal.name:
            principal.require_admin()
            user = await auth.user_by_name(session, body.user)
        if user is None:
            raise not_found(f"user '{body.user}'")
        row, secret = await auth.issue_token(
            session, user, body.name, auth.expires_after(body.expires_in_days)
        )
        return api.CreatedToken(**token_to_api(row, user.name).model_dump(), token=secret)


@router.get("/tokens", response_model=list[api.Token])
async def list_tokens(request: Request) -> list[api.Token]:
    """Your live tokens (their prefixes, never their secrets)."""
    async with transaction(request) as (session, principal):
        principal.require_user()
        rows = await session.scalars(
            select(TokenModel).where(TokenModel.user_id == principal.user_id).order_by(TokenModel.id)
        )
        now = utcnow()
        return [token_to_api(t, principal.name) for t in rows if auth.token_is_live(t, now)]


@router.delete("/tokens/{token_id}", response_model=api.Token)
async def revoke_token(request: Request, token_id: Annotated[int, Path(ge=1, le=api.MAX_ID)]) -> api.Token:
    async with transaction(request) as (session, principal):
        principal.require_user()
        row = await auth.revoke_token(session, principal, token_id)
        user = await session.get(UserModel, row.user_id)
        result = token_to_api(row, user.name if user else "")
    runtime_of(request).principals.clear()
    return result
