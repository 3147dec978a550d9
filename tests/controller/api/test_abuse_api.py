"""Abuse, on SQLite and PostgreSQL: another project's jobs are invisible (404, as if absent), artifact
paths cannot leave their job however they are encoded, filters are matched exactly and never interpreted,
secrets stay out of responses, logs and reprs, and bodies are capped. test_auth_api and test_reports_api
hold the basics; these are the variants."""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dljobs.controller.app import create_app
from dljobs.controller.settings import Settings
from dljobs.storage import open_store
from tests.conftest import ADMIN_TOKEN
from tests.support.factories import command_spec, model_spec
from tests.support.jobs import job_token, submit

SECRET_WORDS = ("secret", "other")


def test_another_project_cannot_reach_a_job_by_any_route(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    identities.project("alpha")
    identities.project("beta")
    alice, bob = identities.user("alpha"), identities.user("beta")
    job = submit(api, alice.headers, command_spec(project="alpha", name="hidden"))
    open_store(settings.storage_url).put_bytes(f"jobs/{job['id']}/model.pt", b"secret")
    point = {"points": [{"name": "loss", "step": 0, "value": 1.0}]}
    for ref in (str(job["id"]), "hidden"):
        for method, path, body in [
            ("GET", f"/api/v1/jobs/{ref}/trials", None),
            ("GET", f"/api/v1/jobs/{ref}/artifacts/model.pt", None),
            ("POST", f"/api/v1/jobs/{ref}/cancel", None),
        ]:
            response = api.request(method, path, json=body, headers=bob.headers)
            assert response.status_code == 404, (method, path, response.status_code)
            assert b"secret" not in response.content
    for path in ("metrics", "trials", "artifacts"):  # reporting routes take the numeric id
        response = api.post(f"/api/v1/jobs/{job['id']}/{path}", json=point, headers=bob.headers)
        assert response.status_code in (404, 422), path  # 422: bob's body is not that route's shape
        if response.status_code == 422:
            assert api.post(f"/api/v1/jobs/{job['id']}/{path}", json={}, headers=bob.headers).status_code in (
                404,
                422,
            )
    assert api.get("/api/v1/jobs", params={"name": "hidden"}, headers=bob.headers).json()["items"] == []
    # bob cannot start from alice's model: the answer is the one for a job that does not exist
    theirs = api.post(
        "/api/v1/jobs",
        json={"spec": model_spec(project="beta", workload={"init_from": f"job://{job['id']}"})},
        headers=bob.headers,
    )
    missing = api.post(
        "/api/v1/jobs",
        json={"spec": model_spec(project="beta", workload={"init_from": "job://987654"})},
        headers=bob.headers,
    )
    assert theirs.status_code == missing.status_code == 422, theirs.text
    assert theirs.json()["error"]["details"][0]["field"] == "workload.init_from"
    assert theirs.json()["error"]["message"].replace(str(job["id"]), "N") == missing.json()["error"][
        "message"
    ].replace("987654", "N")
    # nor deploy it: the answer is the one for a job that does not exist, and no endpoint is made
    deploy_theirs = api.post(
        "/api/v1/endpoints", json={"name": "stolen", "job": str(job["id"])}, headers=bob.headers
    )
    deploy_missing = api.post(
        "/api/v1/endpoints", json={"name": "stolen", "job": "987654"}, headers=bob.headers
    )
    assert deploy_theirs.status_code == deploy_missing.status_code == 404, deploy_theirs.text
    assert api.get("/api/v1/endpoints/stolen", headers=bob.headers).status_code == 404
    assert api.get("/api/v1/endpoints", headers=alice.headers).json() == []
    # the job is untouched
    assert api.get(f"/api/v1/jobs/{job['id']}", headers=alice.headers).json()["status"] == "QUEUED"


ESCAPES = [
    "..%2f..%2fbundles%2fx.zip",
    "..%252f..%252fbundles%252fx.zip",
    "%252e%252e%252f%252e%252e%252fbundles%252fx.zip",
    ".%2e/.%2e/bundles/x.zip",
    "%2e%2e%5c%2e%2e%5cbundles%5cx.zip",
    "..%5c..%5cbundles%5cx.zip",
    "..\\..\\bundles\\x.zip",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "model.pt%00.txt",
    "model.pt%2500",
    "%c0%ae%c0%ae/%c0%ae%c0%ae/bundles/x.zip",
    "sub/%2e%2e/%2e%2e/%2e%2e/bundles/x.zip",
    "./../{victim}/model.pt",
    "..%2f{victim}%2fmodel.pt",
]


def test_downloads_refuse_every_encoding_of_an_escape(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    victim = submit(api, identities.admin.headers, command_spec())
    job = submit(api, identities.admin.headers, command_spec())
    store = open_store(settings.storage_url)
    store.put_bytes(f"jobs/{victim['id']}/model.pt", b"secret")
    store.put_bytes("bundles/x.zip", b"other")
    store.put_bytes(f"jobs/{job['id']}/model.pt", b"mine")
    for escape in ESCAPES:
        path = escape.format(victim=victim["id"])
        response = api.get(f"/api/v1/jobs/{job['id']}/artifacts/{path}", headers=identities.admin.headers)
        assert response.status_code in (404, 422), (path, response.status_code)
        assert not any(word.encode() in response.content for word in SECRET_WORDS), path
    # the job's own file is still served
    assert api.get(
        f"/api/v1/jobs/{job['id']}/artifacts/model.pt", headers=identities.admin.headers
    ).content == (b"mine")


def test_registration_refuses_every_encoding_of_an_escape(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    job = submit(api, identities.admin.headers, command_spec())
    token = job_token(settings.database_url, job["id"])
    store = open_store(settings.storage_url)

    def record(name: str, uri: str | None = None) -> dict[str, object]:
        return {
            "name": name,
            "uri": uri or store.url_for(f"jobs/{job['id']}") + "/" + name,
            "size": 1,
            "sha256": "0" * 64,
            "kind": "model",
        }

    names = [e.format(victim=999) for e in ESCAPES] + ["/abs/model.pt", "a//b", "", ".", "a/./b"]
    for name in names:
        response = api.post(
            f"/api/v1/jobs/{job['id']}/artifacts", json={"artifacts": [record(name)]}, headers=token
        )
        assert response.status_code == 422, (name, response.status_code, response.text)
        assert response.json()["error"]["details"][0]["field"].startswith("artifacts"), name
    # a name that only normalises into the job (absolute, doubled or dotted segments) is refused too, even
    # with the URI of the key it normalises to: names are downloaded by, and must be paths as they are
    for name, key in [("/abs/model.pt", "abs/model.pt"), ("a//b", "a/b"), ("a/./b", "a/b")]:
        response = api.post(
            f"/api/v1/jobs/{job['id']}/artifacts",
            json={"artifacts": [record(name, store.url_for(f"jobs/{job['id']}/{key}"))]},
            headers=token,
        )
        assert response.status_code == 422, (name, response.text)
        assert response.json()["error"]["details"][0]["field"] == "artifacts.name"
    for uri in (
        "file:///etc/passwd",
        store.url_for(f"jobs/{job['id']}") + "/../999/model.pt",
        store.url_for(f"jobs/{job['id']}") + "/%2e%2e/999/model.pt",
        store.url_for("jobs/999/model.pt"),
    ):
        response = api.post(
            f"/api/v1/jobs/{job['id']}/artifacts",
            json={"artifacts": [record("model.pt", uri)]},
            headers=token,
        )
        assert response.status_code == 422, (uri, response.text)
        assert response.json()["error"]["details"][0]["field"] == "artifacts.uri"
    assert api.get(f"/api/v1/jobs/{job['id']}/artifacts", headers=identities.admin.headers).json() == []


INJECTIONS = [
    "%",
    "_",
    "fil%",
    "filt_r-a",
    "' OR '1'='1",
    "filter-a' OR 1=1 --",
    'filter-a"; DROP TABLE jobs; --',
    "filter-a\\",
    "*",
    "filter-[a]",
    "filter-a%00",
]


def test_filters_match_exactly_and_are_never_interpreted(api, identities) -> None:  # type: ignore[no-untyped-def]
    headers = identities.admin.headers
    for name in ("filter-a", "filter-b", "filterxa"):
        submit(api, headers, command_spec(name=name))
    for value in INJECTIONS:
        for key in ("name", "project"):
            response = api.get("/api/v1/jobs", params={key: value}, headers=headers)
            assert response.status_code == 200, (key, value, response.text)
            assert response.json()["items"] == [], (key, value)
        by_ref = api.get(f"/api/v1/jobs/{value.replace('%', '%25')}", headers=headers)
        assert by_ref.status_code in (404, 422), (value, by_ref.status_code)
    bad_status = api.get("/api/v1/jobs", params={"status": "QUEUED' OR 1=1 --"}, headers=headers)
    assert bad_status.status_code == 422 and bad_status.json()["error"]["details"][0]["field"].startswith(
        "status"
    )
    exact = api.get("/api/v1/jobs", params={"name": "filter-a"}, headers=headers).json()["items"]
    assert [job["name"] for job in exact] == ["filter-a"]
    assert len(api.get("/api/v1/jobs", headers=headers).json()["items"]) == 3  # nothing was dropped


def test_secrets_stay_out_of_responses_and_logs(  # type: ignore[no-untyped-def]
    api, identities, settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    job = submit(api, identities.admin.headers, command_spec())
    report = job_token(settings.database_url, job["id"])
    report_token = report["Authorization"].removeprefix("Bearer ")
    guessed = "dlj_" + "s3cr3t" * 8
    seen = [
        api.get("/api/v1/whoami", headers={"Authorization": f"Bearer {guessed}"}),
        api.get("/api/v1/whoami", headers={"Authorization": f"Basic {guessed}"}),
        api.get("/api/v1/jobs", headers=report),  # a reporting token where a user's is needed
        api.get(f"/api/v1/jobs/{job['id']}", headers=identities.admin.headers),
        api.get(f"/api/v1/jobs/{job['id']}/events", headers=identities.admin.headers),
        api.get("/api/v1/tokens", headers=identities.admin.headers),
        api.get("/api/v1/ready"),
        api.get("/metrics", headers=identities.admin.headers),
    ]
    secrets = [ADMIN_TOKEN, report_token, guessed, settings.ray.token.get_secret_value()]
    for response in seen:
        for secret in secrets:
            assert secret not in response.text, (response.request.url, secret[:8])
    logged = caplog.text + repr(settings) + str(settings)
    for secret in secrets:
        assert secret not in logged, secret[:8]


@pytest.fixture
def password_url(clean_database: str) -> str:
    """The test database's URL with a password in it (the local server trusts it and ignores the password)."""
    from sqlalchemy.engine import make_url

    if clean_database.startswith("sqlite"):
        pytest.skip("a SQLite URL holds no password")
    return make_url(clean_database).set(password=PASSWORD).render_as_string(hide_password=False)


PASSWORD = "Pa55-w0rd-XYZ"


def test_a_database_password_is_masked(  # type: ignore[no-untyped-def]
    password_url: str, ray_head, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert PASSWORD in password_url
    settings = Settings(
        home=tmp_path / "home",
        mode="cluster",
        database={"url": password_url},
        ray={"address": ray_head.dashboard_url, "token": ray_head.token},
        storage={"url": (tmp_path / "artifacts").as_uri()},
        auth={"bootstrap_admin_token": ADMIN_TOKEN},
        scheduler={"enabled": False},
        reconciler={"enabled": False},
    )
    assert PASSWORD not in repr(settings) + str(settings) + repr(settings.database)
    with TestClient(create_app(settings, migrate=False)) as client:
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 200 and PASSWORD not in ready.text
    # a server that is not there: the failure says so, without the password
    unreachable = settings.model_copy(deep=True)
    unreachable.database.url = f"postgresql+asyncpg://dljobs:{PASSWORD}@127.0.0.1:9/nothing"
    with pytest.raises(Exception) as failure, TestClient(create_app(unreachable, migrate=False)):
        pass
    assert PASSWORD not in str(failure.value) + repr(failure.value)
    assert PASSWORD not in caplog.text


def _zip(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("blob.bin", b"\x00" * size)
    return buffer.getvalue()


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"{" * min(size, total - sent)
        sent += size


def test_bundles_and_bodies_are_capped(api, identities, settings, clean_database) -> None:  # type: ignore[no-untyped-def]
    headers = identities.admin.headers
    limit = settings.storage.max_bundle_bytes
    big = _zip(limit + 1)
    sha = hashlib.sha256(big).hexdigest()
    response = api.put(
        f"/api/v1/bundles/{sha}", content=big, headers={**headers, "Content-Type": "application/zip"}
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    assert api.head(f"/api/v1/bundles/{sha}", headers=headers).status_code == 404
    # without a Content-Length (chunked), the cap holds while the body streams in
    streamed = api.put(f"/api/v1/bundles/{sha}", content=_chunks(limit + 1), headers=headers)
    assert streamed.status_code == 413
    over = settings.server.max_body_bytes + 1
    for method, path in [
        ("POST", "/api/v1/projects"),
        ("POST", f"/api/v1/jobs/{1}/metrics"),
        ("POST", "/api/v1/tokens"),
        ("PATCH", "/api/v1/projects/default"),
    ]:
        response = api.request(
            method, path, content=_chunks(over), headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 413, (method, path, response.status_code)
    assert api.get("/api/v1/projects", headers=headers).status_code == 200


@pytest.mark.ray
def test_the_ray_dashboard_refuses_its_job_api_without_the_token(ray_head) -> None:  # type: ignore[no-untyped-def]
    import httpx

    url = f"{ray_head.dashboard_url}/api/jobs/"
    assert httpx.get(url, timeout=30).status_code in (401, 403)
    wrong = httpx.get(url, headers={"Authorization": "Bearer " + "0" * 64}, timeout=30)
    assert wrong.status_code in (401, 403)


def test_nul_characters_are_refused_never_a_500(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL stores no NUL in text: wherever one arrives, the answer is a 4xx (SQLite would store it)."""
    headers = identities.admin.headers
    job = submit(api, headers, command_spec(name="nul-target"))
    token = job_token(settings.database_url, job["id"])
    trial = {"number": 1, "status": "running", "params": {"lr": 0.1}, "checkpoint": "ckpt\x00"}
    for method, path, kwargs in [
        ("GET", "/api/v1/jobs/nul-target%00", {}),
        ("GET", "/api/v1/projects/default%00/webhooks", {}),
        ("POST", "/api/v1/tokens", {"json": {"name": "laptop\x00"}}),
        ("POST", "/api/v1/jobs", {"json": {"spec": command_spec(workload={"command": "echo \x00"})}}),
        ("POST", f"/api/v1/jobs/{job['id']}/trials", {"json": {"trials": [trial]}, "token": True}),
    ]:
        auth = token if kwargs.pop("token", False) else headers
        response = api.request(method, path, headers=auth, **kwargs)
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text)
    for key, value in (("name", "nul-target\x00"), ("project", "default\x00")):  # filters: exact, so none
        listed = api.get("/api/v1/jobs", params={key: value}, headers=headers)
        assert listed.status_code == 200 and listed.json()["items"] == [], key
    series = api.get(f"/api/v1/jobs/{job['id']}/metrics", params={"name": "loss\x00"}, headers=headers)
    assert series.status_code == 200 and series.json()["series"] == {}
    refused = api.post(
        "/api/v1/jobs", json={"spec": command_spec(workload={"command": "echo \x00"})}, headers=headers
    )
    assert refused.json()["error"]["details"][0]["field"] == "workload.command"
    assert [j["name"] for j in api.get("/api/v1/jobs", headers=headers).json()["items"]] == ["nul-target"]
