"""The model registry: versions from jobs, with metrics, card and lineage; stages; who may see what."""

from __future__ import annotations

from tests.support.factories import command_spec
from tests.support.jobs import submit
from tests.support.serving import trained_job, trained_sweep


def test_a_trained_job_registers_versions_with_lineage(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    admin = identities.admin.headers
    first = trained_job(api, admin, settings, name="digits")
    second = trained_job(api, admin, settings, name="digits")
    v1 = api.post("/api/v1/models", json={"name": "digits", "job": str(first["id"])}, headers=admin)
    assert v1.status_code == 201, v1.text
    assert v1.json()["version"] == 1 and v1.json()["stage"] == "none"
    assert v1.json()["metrics"]["val_accuracy"] == 0.9 and v1.json()["metrics"]["test_accuracy"] == 0.88
    lineage = v1.json()["lineage"]
    assert lineage["job_id"] == first["id"] and lineage["data_fingerprint"] == "f" * 64
    again = api.post("/api/v1/models", json={"name": "digits", "job": str(first["id"])}, headers=admin)
    assert again.json()["version"] == 1  # idempotent per job
    v2 = api.post("/api/v1/models", json={"name": "digits", "job": str(second["id"])}, headers=admin)
    assert v2.json()["version"] == 2
    listed = api.get("/api/v1/models", headers=admin).json()
    assert [(m["name"], m["latest_version"]) for m in listed] == [("digits", 2)]
    shown = api.get("/api/v1/models/digits/versions/1", headers=admin).json()
    assert shown["card"]["input"]["shape"] == [64] and shown["lineage"]["spec"]["name"] == "digits"
    assert shown["task"] == "classification"
    assert api.get("/api/v1/models/digits/versions/latest", headers=admin).json()["version"] == 2


def test_promoting_to_production_archives_the_previous_one(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    admin = identities.admin.headers
    for _ in range(2):
        job = trained_job(api, admin, settings, name="clf")
        assert (
            api.post("/api/v1/models", json={"name": "clf", "job": str(job["id"])}, headers=admin).status_code
            == 201
        )
    for version in (1, 2):
        response = api.post(
            f"/api/v1/models/clf/versions/{version}/stage", json={"stage": "production"}, headers=admin
        )
        assert response.status_code == 200 and response.json()["stage"] == "production"
    stages = {
        v["version"]: v["stage"] for v in api.get("/api/v1/models/clf", headers=admin).json()["versions"]
    }
    assert stages == {1: "archived", 2: "production"}
    assert api.get("/api/v1/models/clf/versions/production", headers=admin).json()["version"] == 2
    bad = api.post("/api/v1/models/clf/versions/2/stage", json={"stage": "live"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "stage"


def test_only_succeeded_jobs_with_a_model_register(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    admin = identities.admin.headers
    queued = submit(api, admin, command_spec())
    refused = api.post("/api/v1/models", json={"name": "m", "job": str(queued["id"])}, headers=admin)
    assert refused.status_code == 409 and "QUEUED" in refused.json()["error"]["message"]
    assert api.get("/api/v1/models/m", headers=admin).status_code == 404
    assert api.get("/api/v1/models/nope/versions/1", headers=admin).status_code == 404
    bad = api.get("/api/v1/models/Bad:Name/versions/x", headers=admin)
    assert bad.status_code in (404, 422)


def test_models_of_other_projects_are_invisible(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    admin = identities.admin.headers
    job = trained_job(api, admin, settings, name="secret")
    api.post("/api/v1/models", json={"name": "secret", "job": str(job["id"])}, headers=admin)
    outsider = identities.user(identities.project())
    assert api.get("/api/v1/models", headers=outsider.headers).json() == []
    assert api.get("/api/v1/models/secret", headers=outsider.headers).status_code == 404
    promoted = api.post(
        "/api/v1/models/secret/versions/1/stage", json={"stage": "production"}, headers=outsider.headers
    )
    assert promoted.status_code == 404


def test_a_sweep_registers_its_best_trial(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    admin = identities.admin.headers
    trials = [
        {"number": n, "status": "succeeded", "params": {"training.optimizer.lr": 0.01 * n}, "metric": m}
        for n, m in ((1, 0.5), (2, 0.8), (3, 0.7))
    ]
    job = trained_sweep(api, admin, settings, trials, best=2)
    url = "/api/v1/models"
    other = api.post(url, json={"name": "tuned", "job": str(job["id"]), "trial": 3}, headers=admin)
    assert other.status_code == 422 and other.json()["error"]["details"][0]["field"] == "trial"
    version = api.post(url, json={"name": "tuned", "job": str(job["id"])}, headers=admin)
    assert version.status_code == 201, version.text
    assert version.json()["trial_id"] == 2 and version.json()["lineage"]["trial"] == 2
    assert version.json()["lineage"]["sweep"]["job_id"] == job["id"]
    assert "trial_spec" not in version.json()["lineage"]  # as the spec: shown with the card only
    named = api.post(url, json={"name": "tuned", "job": str(job["id"]), "trial": 2}, headers=admin)
    assert named.json()["version"] == 1  # the same version
    shown = api.get("/api/v1/models/tuned/versions/1", headers=admin).json()
    assert shown["lineage"]["trial_spec"]["training"]["optimizer"]["lr"] == 0.03
    assert shown["card"]["sweep"]["best_trial"] == 2
    single = trained_job(api, admin, settings, name="plain")
    refused = api.post(url, json={"name": "plain", "job": str(single["id"]), "trial": 1}, headers=admin)
    assert refused.status_code == 422 and "not a sweep" in refused.json()["error"]["message"]
