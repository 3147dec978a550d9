"""Tokens and project isolation, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dljobs.controller.db.base import utcnow
from dljobs.controller.db.engine import create_engine
from dljobs.controller.db.models import TokenModel
from tests.support.factories import command_spec


def _open_paths(api) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    schema = api.get("/api/v1/openapi.json").json()
    out = []
    for path, methods in schema["paths"].items():
        for method in methods:
            concrete = path.replace("{job}", "1").replace("{name}", "default").replace("{token_id}", "1")
            concrete = concrete.replace("{sha256}", "0" * 64)
            out.append((method.upper(), concrete))
    return out


def test_nothing_but_health_answers_without_a_token(api) -> None:  # type: ignore[no-untyped-def]
    for method, path in _open_paths(api):
        response = api.request(method, path)
        if path in ("/api/v1/health", "/api/v1/ready"):
            assert response.status_code == 200, path
        else:
            assert response.status_code == 401, (method, path, response.status_code)
            if method != "HEAD":
                assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer " + "x" * 300, "Bearer nope", "token"])
def test_malformed_and_unknown_tokens_are_refused(api, header: str) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/v1/jobs", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def _set_expiry(url: str, token_prefix: str, when) -> None:  # type: ignore[no-untyped-def]
    async def run() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.execute(
                update(TokenModel).where(TokenModel.prefix == token_prefix[:12]).values(expires_at=when)
            )
        await engine.dispose()

    asyncio.run(run())


def test_expired_and_revoked_tokens_are_refused(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    alice = identities.user("default")
    assert api.get("/api/v1/whoami", headers=alice.headers).status_code == 200
    _set_expiry(settings.database_url, alice.token, utcnow() - timedelta(seconds=1))
    api.app.state.runtime.principals.clear()  # as if the few seconds a lookup is remembered had passed
    expired = api.get("/api/v1/whoami", headers=alice.headers)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]

    bob = identities.user("default")
    token_id = api.get("/api/v1/tokens", headers=bob.headers).json()[0]["id"]
    assert api.delete(f"/api/v1/tokens/{token_id}", headers=bob.headers).status_code == 200
    revoked = api.get("/api/v1/whoami", headers=bob.headers)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]


def test_tokens_are_stored_hashed(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    carol = identities.user("default")

    async def stored() -> list[str]:
        engine = create_engine(settings.database_url)
        async with engine.connect() as connection:
            rows = (await connection.execute(select(TokenModel.token_hash, TokenModel.prefix))).all()
        await engine.dispose()
        return [value for row in rows for value in row]

    values = asyncio.run(stored())
    assert carol.token not in values and all(carol.token not in v for v in values)


def test_projects_see_only_their_own_jobs(api, identities) -> None:  # type: ignore[no-untyped-def]
    identities.project("alpha")
    identities.project("beta")
    alice = identities.user("alpha")
    bob = identities.user("beta")
    job = api.post(
        "/api/v1/jobs", json={"spec": command_spec(project="alpha", name="secret")}, headers=alice.headers
    )
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    # bob cannot read, cancel, list, follow or explain it: 404, as if it did not exist
    for method, path in [
        ("GET", f"/api/v1/jobs/{job_id}"),
        ("POST", f"/api/v1/jobs/{job_id}/cancel"),
        ("GET", f"/api/v1/jobs/{job_id}/events"),
        ("GET", f"/api/v1/jobs/{job_id}/logs"),
        ("GET", f"/api/v1/jobs/{job_id}/why"),
        ("GET", "/api/v1/jobs/secret"),
    ]:
        response = api.request(method, path, headers=bob.headers)
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/jobs", headers=bob.headers).json()["items"] == []
    assert api.get("/api/v1/jobs", params={"project": "alpha"}, headers=bob.headers).json()["items"] == []
    # nor submit into alpha
    refused = api.post("/api/v1/jobs", json={"spec": command_spec(project="alpha")}, headers=bob.headers)
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "project"
    # alice and the admin do see it
    assert api.get(f"/api/v1/jobs/{job_id}", headers=alice.headers).status_code == 200
    assert api.get(f"/api/v1/jobs/{job_id}", headers=identities.admin.headers).status_code == 200
    assert [p["name"] for p in api.get("/api/v1/projects", headers=bob.headers).json()] == ["beta"]


def test_only_admins_manage_identity(api, identities) -> None:  # type: ignore[no-untyped-def]
    dave = identities.user("default")
    for method, path, body in [
        ("POST", "/api/v1/projects", {"name": "x"}),
        ("POST", "/api/v1/users", {"name": "eve"}),
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/tokens", {"user": "admin"}),
        ("PATCH", "/api/v1/projects/default", {"quota": {"max_jobs": 1}}),
    ]:
        response = api.request(method, path, json=body, headers=dave.headers)
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "forbidden"
    own = api.post("/api/v1/tokens", json={"name": "laptop"}, headers=dave.headers)
    assert own.status_code == 201 and own.json()["user"] == dave.user
    assert api.get("/api/v1/whoami", headers={"Authorization": f"Bearer {own.json()['token']}"}).json() == {
        "user": dave.user,
        "admin": False,
        "projects": ["default"],
    }


def test_duplicate_names_conflict(api, identities) -> None:  # type: ignore[no-untyped-def]
    identities.project("gamma")
    again = api.post("/api/v1/projects", json={"name": "gamma"}, headers=identities.admin.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_exists"
    bad = api.post("/api/v1/projects", json={"name": "Bad/Name"}, headers=identities.admin.headers)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "name"
