"""Operators' view: /metrics for Prometheus (admin only) and JSON log lines with request ids."""

from __future__ import annotations

import json
import logging

from dljobs.controller.telemetry import JsonFormatter, request_id_var
from tests.support.factories import command_spec
from tests.support.jobs import submit
from tests.support.serving import trained_job


def test_metrics_need_an_admin_and_show_queue_and_requests(api, identities) -> None:  # type: ignore[no-untyped-def]
    identities.project("alpha")
    member = identities.user("alpha")
    submit(api, identities.admin.headers, command_spec(priority="high"))
    submit(api, member.headers, command_spec(project="alpha"))
    submit(api, member.headers, command_spec(project="alpha"))
    api.get("/api/v1/jobs/999", headers=identities.admin.headers)
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers=member.headers).status_code == 403
    response = api.get("/metrics", headers=identities.admin.headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'dljobs_queue_depth{priority="high",project="default"} 1.0' in text
    assert 'dljobs_queue_depth{priority="normal",project="alpha"} 2.0' in text
    assert 'dljobs_jobs{status="QUEUED"} 3.0' in text and 'dljobs_jobs{status="RUNNING"} 0.0' in text
    # latency by route template, never by raw path
    assert 'route="/api/v1/jobs/{job}",status="404"' in text and "/api/v1/jobs/999" not in text
    assert (
        'dljobs_api_request_duration_seconds_count{method="POST",route="/api/v1/jobs",status="201"} 3.0'
        in text
    )


def test_metrics_count_endpoint_requests_by_status(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    admin = identities.admin.headers
    job = trained_job(api, admin, settings)
    assert api.post(
        "/api/v1/endpoints", json={"name": "counted", "job": str(job["id"])}, headers=admin
    ).is_success
    for _ in range(2):  # nothing serves it here (the deployer is off): 503 with Retry-After
        answer = api.post("/api/v1/endpoints/counted/predict", json={"inputs": [[0.0] * 64]}, headers=admin)
        assert answer.status_code == 503
    api.post("/api/v1/endpoints/unknown/predict", json={"inputs": []}, headers=admin)  # 404: no label for it
    text = api.get("/metrics", headers=admin).text
    assert 'dljobs_endpoint_requests_total{endpoint="counted",status="503"} 2.0' in text
    assert 'endpoint="unknown"' not in text


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("dljobs.api", logging.WARNING, __file__, 1, "job %s lost", (7,), None)
    record.job_id = 7
    token = request_id_var.set("abc123")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert (
        entry["message"] == "job 7 lost" and entry["level"] == "warning" and entry["logger"] == "dljobs.api"
    )
    assert entry["request_id"] == "abc123" and entry["job_id"] == 7 and entry["ts"].endswith("+00:00")
