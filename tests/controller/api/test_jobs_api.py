"""The jobs API on SQLite and PostgreSQL: submit, idempotency, list, get, cancel, events, errors."""

from __future__ import annotations

from tests.support.factories import command_spec


def test_submit_stores_the_resolved_spec_and_queues(api, identities) -> None:  # type: ignore[no-untyped-def]
    response = api.post(
        "/api/v1/jobs", json={"spec": command_spec(name="first")}, headers=identities.admin.headers
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "QUEUED"
    assert job["name"] == "first" and job["project"] == "default" and job["submitted_by"] == "admin"
    # defaults are filled in and a seed is chosen and recorded
    assert job["spec"]["training"]["epochs"] == 10
    assert isinstance(job["spec"]["training"]["seed"], int)
    assert job["spec"]["timeout"] == "10m"
    assert (
        api.get(f"/api/v1/jobs/{job['id']}", headers=identities.admin.headers).json()["spec"] == job["spec"]
    )


def test_idempotency_key_returns_the_same_job(api, identities) -> None:  # type: ignore[no-untyped-def]
    headers = {**identities.admin.headers, "Idempotency-Key": "abc-123"}
    first = api.post("/api/v1/jobs", json={"spec": command_spec(name="once")}, headers=headers)
    again = api.post("/api/v1/jobs", json={"spec": command_spec(name="once")}, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    listed = api.get("/api/v1/jobs", params={"name": "once"}, headers=identities.admin.headers).json()
    assert [j["id"] for j in listed["items"]] == [first.json()["id"]]


def test_list_filters_and_cursor_pagination(api, identities) -> None:  # type: ignore[no-untyped-def]
    ids = [
        api.post(
            "/api/v1/jobs", json={"spec": command_spec(name=f"p{i % 2}")}, headers=identities.admin.headers
        ).json()["id"]
        for i in range(7)
    ]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/jobs", params=params, headers=identities.admin.headers).json()
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    named = api.get("/api/v1/jobs", params={"name": "p1"}, headers=identities.admin.headers).json()["items"]
    assert {j["name"] for j in named} == {"p1"} and len(named) == 3
    queued = api.get("/api/v1/jobs", params={"status": ["QUEUED"]}, headers=identities.admin.headers).json()
    assert len(queued["items"]) == 7
    none = api.get("/api/v1/jobs", params={"status": ["RUNNING"]}, headers=identities.admin.headers).json()
    assert none["items"] == []
    bad = api.get("/api/v1/jobs", params={"cursor": "not-a-cursor"}, headers=identities.admin.headers)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "cursor"


def test_get_by_name_returns_the_newest(api, identities) -> None:  # type: ignore[no-untyped-def]
    api.post("/api/v1/jobs", json={"spec": command_spec(name="same")}, headers=identities.admin.headers)
    newest = api.post(
        "/api/v1/jobs", json={"spec": command_spec(name="same")}, headers=identities.admin.headers
    )
    found = api.get("/api/v1/jobs/same", headers=identities.admin.headers).json()
    assert found["id"] == newest.json()["id"]


def test_cancel_a_queued_job_ends_it_with_an_event(api, identities) -> None:  # type: ignore[no-untyped-def]
    job = api.post("/api/v1/jobs", json={"spec": command_spec()}, headers=identities.admin.headers).json()
    cancelled = api.post(f"/api/v1/jobs/{job['id']}/cancel", headers=identities.admin.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    events = api.get(f"/api/v1/jobs/{job['id']}/events", headers=identities.admin.headers).json()
    assert [(e["from_status"], e["to_status"]) for e in events] == [(None, "QUEUED"), ("QUEUED", "CANCELLED")]
    assert events[1]["reason"] == "cancelled by admin"
    again = api.post(f"/api/v1/jobs/{job['id']}/cancel", headers=identities.admin.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_finished"


def test_unknown_job_is_404_in_the_error_shape(api, identities) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/v1/jobs/999999", headers=identities.admin.headers)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and error["message"] == "job 999999 not found"
    assert error["request_id"] == response.headers["x-request-id"]


def test_invalid_spec_names_field_and_leaves_nothing(api, identities) -> None:  # type: ignore[no-untyped-def]
    spec = command_spec(resources={"workers": 0})
    response = api.post("/api/v1/jobs", json={"spec": spec}, headers=identities.admin.headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_spec"
    assert error["details"][0]["field"] == "resources.workers"
    assert api.get("/api/v1/jobs", headers=identities.admin.headers).json()["items"] == []


def test_yaml_body_gets_line_numbers(api, identities) -> None:  # type: ignore[no-untyped-def]
    body = "name: y\nworkload:\n  command: echo hi\ntraining:\n  epocs: 3\n"
    response = api.post(
        "/api/v1/jobs", content=body, headers={**identities.admin.headers, "Content-Type": "application/yaml"}
    )
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail == {
        "field": "training.epocs",
        "message": "unknown field 'epocs' (did you mean 'epochs'?)",
        "line": 5,
    }
    ok = api.post(
        "/api/v1/jobs",
        content=body.replace("epocs", "epochs"),
        headers={**identities.admin.headers, "Content-Type": "application/yaml"},
    )
    assert ok.status_code == 201 and ok.json()["spec"]["training"]["epochs"] == 3


def test_dry_run_validates_without_storing(api, identities) -> None:  # type: ignore[no-untyped-def]
    response = api.post(
        "/api/v1/jobs",
        params={"dry_run": "true"},
        json={"spec": command_spec(name="dry")},
        headers=identities.admin.headers,
    )
    assert response.status_code == 200 and response.json()["name"] == "dry"
    assert api.get("/api/v1/jobs", headers=identities.admin.headers).json()["items"] == []


def test_unknown_project_is_a_spec_error(api, identities) -> None:  # type: ignore[no-untyped-def]
    response = api.post(
        "/api/v1/jobs", json={"spec": command_spec(project="nowhere")}, headers=identities.admin.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "project"


def test_local_code_path_is_refused_by_the_server(api, identities) -> None:  # type: ignore[no-untyped-def]
    spec = command_spec(workload={"command": "python x.py", "code": "./src"})
    response = api.post("/api/v1/jobs", json={"spec": spec}, headers=identities.admin.headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "workload.code"


def test_ready_reports_database_and_ray(api) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/v1/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "ray": "ok"}}
    assert api.get("/api/v1/health").json()["status"] == "ok"


def test_a_project_created_after_a_refused_submission_takes_the_next_one(api, identities) -> None:  # type: ignore[no-untyped-def]
    spec = command_spec(name="later", project="later")
    refused = api.post("/api/v1/jobs", json={"spec": spec}, headers=identities.admin.headers)
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "project"
    created = api.post("/api/v1/projects", json={"name": "later"}, headers=identities.admin.headers)
    assert created.status_code == 201, created.text
    for _ in range(2):  # the project's id, looked up once, is kept
        accepted = api.post("/api/v1/jobs", json={"spec": spec}, headers=identities.admin.headers)
        assert accepted.status_code == 201 and accepted.json()["project"] == "later", accepted.text
    events = api.get(f"/api/v1/jobs/{accepted.json()['id']}/events", headers=identities.admin.headers).json()
    assert [(e["from_status"], e["to_status"], e["reason"]) for e in events] == [
        (None, "QUEUED", "submitted by admin")
    ]
