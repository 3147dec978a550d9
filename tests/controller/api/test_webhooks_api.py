"""Webhooks: a finished job is posted to a real HTTP receiver, signed, retried after failures, and a
receiver that hangs holds up nothing else."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from dljobs.controller.app import create_app
from tests.support.factories import command_spec
from tests.support.jobs import WAIT_LIMIT, submit
from tests.support.serving import trained_job


class Receiver:
    """A real HTTP endpoint on loopback: records deliveries; answers with the statuses it is given."""

    def __init__(self, statuses: list[int], gate: threading.Event | None = None) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        statuses_left = list(statuses)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                if gate is not None:
                    gate.wait()
                status = statuses_left.pop(0) if statuses_left else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int) -> None:
        deadline = time.monotonic() + WAIT_LIMIT
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} deliveries arrived"
            time.sleep(0.05)


@pytest.fixture
def notifying_api(settings) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings.notifier.interval = 0.1
    settings.notifier.backoff_seconds = 0.2
    settings.notifier.timeout = 1.0
    with TestClient(create_app(settings, migrate=False)) as client:
        yield client


def test_a_finished_job_is_delivered_signed_and_retried(notifying_api, identities) -> None:  # type: ignore[no-untyped-def]
    api = notifying_api
    receiver = Receiver([500, 503])
    created = api.post(
        "/api/v1/projects/default/webhooks", json={"url": receiver.url}, headers=identities.admin.headers
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["job.finished", "sweep.finished"]
    listed = api.get("/api/v1/projects/default/webhooks", headers=identities.admin.headers).json()
    assert "secret" not in listed[0]

    job = submit(api, identities.admin.headers, command_spec(name="notify-me"))
    api.post(f"/api/v1/jobs/{job['id']}/cancel", headers=identities.admin.headers)
    receiver.wait(3)  # two failures, then delivered
    headers, body = receiver.received[-1]
    payload = json.loads(body)
    assert payload["event"] == "job.finished" and payload["job"]["status"] == "CANCELLED"
    assert f"job {job['id']} (notify-me) CANCELLED" in payload["text"]
    expected = hmac.new(
        hook["secret"].encode(), f"{headers['X-Dljobs-Timestamp']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert headers["X-Dljobs-Signature"] == f"sha256={expected}"
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        deliveries = api.get(
            f"/api/v1/projects/default/webhooks/{hook['id']}/deliveries", headers=identities.admin.headers
        ).json()
        if deliveries and deliveries[0]["status"] == "delivered":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert deliveries[0]["attempts"] == 3 and deliveries[0]["last_error"] is None


def test_a_deployment_change_is_delivered(notifying_api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    api, admin = notifying_api, identities.admin.headers
    receiver = Receiver([])
    created = api.post(
        "/api/v1/projects/default/webhooks",
        json={"url": receiver.url, "events": ["deployment.changed"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    job = trained_job(api, admin, settings)
    finished = submit(api, admin, command_spec(name="not-subscribed"))
    api.post(f"/api/v1/jobs/{finished['id']}/cancel", headers=admin)  # job.finished: not subscribed
    deployed = api.post("/api/v1/endpoints", json={"name": "hooked", "job": str(job["id"])}, headers=admin)
    assert deployed.status_code == 201, deployed.text
    receiver.wait(1)
    time.sleep(0.5)  # nothing else is on its way: the cancelled job's event is not this hook's
    assert len(receiver.received) == 1
    payload = json.loads(receiver.received[0][1])
    assert payload["event"] == "deployment.changed"
    assert payload["endpoint"]["name"] == "hooked" and payload["endpoint"]["change"] == "created"
    assert payload["text"].startswith("dljobs endpoint hooked created: deploying")


def test_a_hanging_receiver_holds_up_nothing(notifying_api, identities) -> None:  # type: ignore[no-untyped-def]
    api = notifying_api
    gate = threading.Event()
    hanging = Receiver([], gate=gate)
    hook = api.post(
        "/api/v1/projects/default/webhooks", json={"url": hanging.url}, headers=identities.admin.headers
    ).json()
    first = submit(api, identities.admin.headers, command_spec())
    api.post(f"/api/v1/jobs/{first['id']}/cancel", headers=identities.admin.headers)
    hanging.wait(1)
    deliveries_url = f"/api/v1/projects/default/webhooks/{hook['id']}/deliveries"
    try:
        # the receiver holds the first delivery open; the API and the jobs go on meanwhile
        second = submit(api, identities.admin.headers, command_spec())
        cancelled = api.post(f"/api/v1/jobs/{second['id']}/cancel", headers=identities.admin.headers)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
        assert not gate.is_set()
        # and the delivery that timed out is recorded as such, for a retry
        deadline = time.monotonic() + WAIT_LIMIT
        while not any(
            d["last_error"] for d in api.get(deliveries_url, headers=identities.admin.headers).json()
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        gate.set()


def test_only_admins_manage_webhooks_and_urls_are_checked(api, identities) -> None:  # type: ignore[no-untyped-def]
    member = identities.user("default")
    refused = api.post(
        "/api/v1/projects/default/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=member.headers
    )
    assert refused.status_code == 403
    bad = api.post(
        "/api/v1/projects/default/webhooks", json={"url": "ftp://example"}, headers=identities.admin.headers
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "url"
    unknown = api.post(
        "/api/v1/projects/default/webhooks",
        json={"url": "http://x.test/", "events": ["nope"]},
        headers=identities.admin.headers,
    )
    assert unknown.status_code == 422
