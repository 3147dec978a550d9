"""Live metrics and artifacts: reported with a job's own token, read and downloaded by its project only."""

from __future__ import annotations

import hashlib
import json
import math

from dljobs.storage import open_store
from tests.support.factories import command_spec
from tests.support.jobs import job_token, submit


def test_metrics_reported_by_the_job_come_back_as_series(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    job = submit(api, identities.admin.headers, command_spec())
    token = job_token(settings.database_url, job["id"])
    points = [
        {"name": "val_loss", "step": s, "epoch": s, "value": 1.0 / (s + 1), "ts": 1.7e9 + s} for s in range(3)
    ]
    points += [
        {"name": "val_accuracy", "step": 2, "epoch": 2, "value": 0.9},
        {"name": "val_loss", "step": 3, "epoch": 3, "value": math.nan},
    ]
    # Python's json writes NaN as a bare literal; the server drops such points and says how many
    response = api.post(
        f"/api/v1/jobs/{job['id']}/metrics",
        content=json.dumps({"points": points}),
        headers={**token, "Content-Type": "application/json"},
    )
    assert response.status_code == 200 and response.json() == {"accepted": 4, "dropped": 1}
    series = api.get(f"/api/v1/jobs/{job['id']}/metrics", headers=identities.admin.headers).json()["series"]
    assert [p["value"] for p in series["val_loss"]] == [1.0, 0.5, 1 / 3]
    assert series["val_accuracy"][0]["epoch"] == 2
    only = api.get(
        f"/api/v1/jobs/{job['id']}/metrics", params={"name": "val_accuracy"}, headers=identities.admin.headers
    ).json()["series"]
    assert list(only) == ["val_accuracy"]
    bad = api.post(
        f"/api/v1/jobs/{job['id']}/metrics",
        json={"points": [{"name": "x y", "step": 0, "value": 1}]},
        headers=token,
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"].startswith("points.0.name")


def test_a_job_token_is_good_for_its_own_job_only(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    mine = submit(api, identities.admin.headers, command_spec())
    other = submit(api, identities.admin.headers, command_spec())
    token = job_token(settings.database_url, mine["id"])
    point = {"points": [{"name": "loss", "step": 0, "value": 1.0}]}
    assert api.post(f"/api/v1/jobs/{other['id']}/metrics", json=point, headers=token).status_code == 404
    assert api.get(f"/api/v1/jobs/{other['id']}", headers=token).status_code == 404
    listing = api.get("/api/v1/jobs", headers=token)
    assert listing.status_code == 403 and "reporting token" in listing.json()["error"]["message"]
    assert api.post("/api/v1/jobs", json={"spec": command_spec()}, headers=token).status_code == 403


def test_artifacts_register_only_inside_the_job_and_download(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    job = submit(api, identities.admin.headers, command_spec())
    token = job_token(settings.database_url, job["id"])
    store = open_store(settings.storage_url)
    data = b"weights" * 100
    store.put_bytes(f"jobs/{job['id']}/model.pt", data)
    record = {
        "name": "model.pt",
        "uri": store.url_for(f"jobs/{job['id']}/model.pt"),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "kind": "model",
    }
    response = api.post(f"/api/v1/jobs/{job['id']}/artifacts", json={"artifacts": [record]}, headers=token)
    assert response.status_code == 200, response.text
    # registering again updates, never duplicates
    api.post(f"/api/v1/jobs/{job['id']}/artifacts", json={"artifacts": [record]}, headers=token)
    listed = api.get(f"/api/v1/jobs/{job['id']}/artifacts", headers=identities.admin.headers).json()
    assert [(a["name"], a["size"], a["kind"]) for a in listed] == [("model.pt", len(data), "model")]
    download = api.get(f"/api/v1/jobs/{job['id']}/artifacts/model.pt", headers=identities.admin.headers)
    assert download.status_code == 200 and download.content == data
    assert download.headers["content-disposition"] == 'attachment; filename="model.pt"'

    elsewhere = {**record, "uri": store.url_for("jobs/999/model.pt")}
    refused = api.post(f"/api/v1/jobs/{job['id']}/artifacts", json={"artifacts": [elsewhere]}, headers=token)
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "artifacts.uri"
    escaping = {**record, "name": "../999/model.pt"}
    refused = api.post(f"/api/v1/jobs/{job['id']}/artifacts", json={"artifacts": [escaping]}, headers=token)
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "artifacts.name"


def test_downloads_cannot_leave_the_job(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    victim = submit(api, identities.admin.headers, command_spec())
    job = submit(api, identities.admin.headers, command_spec())
    store = open_store(settings.storage_url)
    store.put_bytes(f"jobs/{victim['id']}/model.pt", b"secret")
    store.put_bytes("bundles/x.zip", b"other")
    for path in (
        f"../{victim['id']}/model.pt",
        "%2e%2e/%2e%2e/bundles/x.zip",
        "..%2f..%2fbundles%2fx.zip",
        "%252e%252e/bundles/x.zip",
        "a/../../bundles/x.zip",
    ):
        response = api.get(f"/api/v1/jobs/{job['id']}/artifacts/{path}", headers=identities.admin.headers)
        assert response.status_code in (404, 422), path
        assert b"secret" not in response.content and b"other" not in response.content
    missing = api.get(f"/api/v1/jobs/{job['id']}/artifacts/model.pt", headers=identities.admin.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_another_project_cannot_read_reports(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    identities.project("alpha")
    identities.project("beta")
    alice, bob = identities.user("alpha"), identities.user("beta")
    job = submit(api, alice.headers, command_spec(project="alpha"))
    open_store(settings.storage_url).put_bytes(f"jobs/{job['id']}/model.pt", b"w")
    for path in ("metrics", "artifacts", "artifacts/model.pt"):
        assert api.get(f"/api/v1/jobs/{job['id']}/{path}", headers=bob.headers).status_code == 404
        assert api.get(f"/api/v1/jobs/{job['id']}/{path}", headers=alice.headers).status_code == 200
