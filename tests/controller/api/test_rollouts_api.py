"""Protection and rollouts on the session's Ray head: a rate limit that holds across two controllers,
backpressure that answers at once, canaries rolled back on errors, and a promotion under steady traffic
that loses no request."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from dljobs.controller.app import create_app
from dljobs.storage import open_store
from tests.support.serving import digits_inputs, trained_job, wait_endpoint, write_tiny_classifier


def model_job(api, headers, settings, name: str, *, seed: int = 0, broken: bool = False) -> str:  # type: ignore[no-untyped-def]
    job = trained_job(api, headers, settings, name=name)
    write_tiny_classifier(open_store(settings.storage_url), f"jobs/{job['id']}", seed=seed, broken=broken)
    return str(job["id"])


def deploy(api, headers, name: str, job: str, canary: float = 0.0, **config):  # type: ignore[no-untyped-def]
    body = {"name": name, "job": job, "canary": canary, "config": {"num_cpus": 0.1, **config}}
    response = api.post("/api/v1/endpoints", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_the_rate_limit_holds_across_two_controllers(serving_api, identities, serving_settings) -> None:  # type: ignore[no-untyped-def]
    api, admin = serving_api, identities.admin.headers
    key = deploy(api, admin, "limited", model_job(api, admin, serving_settings, "lim"), rate_limit=5)["key"][
        "key"
    ]
    wait_endpoint(api, admin, "limited")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(serving_settings, migrate=False)) as second:
        replicas = [api, second]
        started = time.time()
        answers = [
            replicas[i % 2].post(
                "/api/v1/endpoints/limited/predict", json={"inputs": digits_inputs(1)}, headers=auth
            )
            for i in range(40)
        ]
        ended = time.time()
    granted = [a for a in answers if a.status_code == 200]
    limited = [a for a in answers if a.status_code == 429]
    assert len(granted) + len(limited) == 40
    windows = int(ended) - int(started) + 1
    # one shared counter: at most 5 a second in all, however the requests spread over the controllers
    assert 1 <= len(granted) <= 5 * windows, (len(granted), windows)
    assert limited and int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].json()["error"]["code"] == "rate_limited"


def test_an_overloaded_endpoint_answers_503_with_retry_after(
    serving_api, identities, serving_settings
) -> None:  # type: ignore[no-untyped-def]
    api, admin = serving_api, identities.admin.headers
    job = model_job(api, admin, serving_settings, "busy")
    key = deploy(api, admin, "busy", job, max_ongoing_requests=1, max_queued_requests=1, batch_wait_ms=50)[
        "key"
    ]["key"]
    wait_endpoint(api, admin, "busy")
    auth = {"Authorization": f"Bearer {key}"}

    def call(_: int):  # type: ignore[no-untyped-def]
        return api.post("/api/v1/endpoints/busy/predict", json={"inputs": digits_inputs(1)}, headers=auth)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(64)))
    codes = {a.status_code for a in answers}
    assert codes <= {200, 503}, codes
    busy = [a for a in answers if a.status_code == 503]
    assert busy and busy[0].headers["Retry-After"] == "1" and busy[0].json()["error"]["code"] == "overloaded"
    assert any(a.status_code == 200 for a in answers)


def test_a_failing_canary_is_rolled_back_and_a_promotion_loses_no_request(  # type: ignore[no-untyped-def]
    serving_api, identities, serving_settings
) -> None:
    api, admin = serving_api, identities.admin.headers
    url = "/api/v1/endpoints/roll/predict"
    key = deploy(api, admin, "roll", model_job(api, admin, serving_settings, "roll-a"))["key"]["key"]
    auth = {"Authorization": f"Bearer {key}"}
    wait_endpoint(api, admin, "roll")

    # a broken version as a 50% canary: its errors cross the threshold and it is rolled back
    broken = model_job(api, admin, serving_settings, "roll-b", broken=True)
    deploy(api, admin, "roll", broken, canary=50, min_requests=5, max_error_rate=0.2)
    wait_endpoint(api, admin, "roll", lambda e: e["canary_ready"])
    codes = [api.post(url, json={"inputs": digits_inputs(1)}, headers=auth).status_code for _ in range(30)]
    assert 502 in codes and 200 in codes
    rolled = wait_endpoint(api, admin, "roll", lambda e: e["canary"] is None)
    assert rolled["stable"]["model"] == "roll-a" and rolled["status"] == "ready"
    assert any(ev["kind"] == "rolled_back" and "error rate" in ev["message"] for ev in rolled["events"])

    # a good version as a 30% canary, promoted by command while traffic flows: no request fails
    good = model_job(api, admin, serving_settings, "roll-c", seed=1)
    deploy(api, admin, "roll", good, canary=30)
    wait_endpoint(api, admin, "roll", lambda e: e["canary_ready"])
    served: list[tuple[int, str]] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            answer = api.post(url, json={"inputs": digits_inputs(2)}, headers=auth)
            served.append((answer.status_code, answer.json().get("model", answer.text)))

    senders = [threading.Thread(target=traffic) for _ in range(3)]
    for sender in senders:
        sender.start()
    try:
        while len(served) < 30:
            time.sleep(0.05)
        promoted = api.post("/api/v1/endpoints/roll/promote", headers=admin)
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["stable"]["model"] == "roll-c"
        mark = len(served)
        # through the drain: the old version's application is removed while traffic goes on
        time.sleep(serving_settings.serving.drain_seconds + 3)
        while len(served) < mark + 30:
            time.sleep(0.05)
    finally:
        stop.set()
        for sender in senders:
            sender.join()
    failures = [s for s in served if s[0] != 200]
    assert failures == [], failures[:5]
    models = [m for _, m in served]
    assert "roll-a" in models[:mark] and "roll-c" in models[:mark]  # the canary took its share
    assert set(models[-20:]) == {"roll-c"}
