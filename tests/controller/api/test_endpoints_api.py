"""Endpoints on the session's Ray head: deploy a job's model, predict with the endpoint's key, inputs checked
against the model's schema, errors in one shape."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from dljobs.storage import open_store
from tests.support.serving import digits_inputs, trained_job, wait_endpoint, write_tiny_classifier


def deployed(api, headers, settings, name: str, **config):  # type: ignore[no-untyped-def]
    job = trained_job(api, headers, settings, name=f"{name}-model")
    write_tiny_classifier(open_store(settings.storage_url), f"jobs/{job['id']}")
    body = {"name": name, "job": str(job["id"]), "config": {"num_cpus": 0.1, **config}}
    response = api.post("/api/v1/endpoints", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_deploy_a_job_and_predict_with_the_endpoint_key(serving_api, identities, serving_settings) -> None:  # type: ignore[no-untyped-def]
    api, admin = serving_api, identities.admin.headers
    created = deployed(api, admin, serving_settings, "digits")
    key = created["key"]["key"]
    assert key.startswith("dlje_") and created["status"] == "deploying"
    endpoint = wait_endpoint(api, admin, "digits")
    assert endpoint["stable"] == {"model": "digits-model", "version": 1}
    auth = {"Authorization": f"Bearer {key}"}
    response = api.post("/api/v1/endpoints/digits/predict", json={"inputs": digits_inputs(3)}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "digits-model" and body["version"] == 1 and len(body["predictions"]) == 3
    first = body["predictions"][0]
    assert first["class"] in [str(i) for i in range(10)] and abs(sum(first["probabilities"]) - 1) < 1e-3
    # a user token of the project works too (the CLI's `dljobs predict`)
    assert (
        api.post(
            "/api/v1/endpoints/digits/predict", json={"inputs": digits_inputs(1)}, headers=admin
        ).status_code
        == 200
    )
    # the key is hashed at rest: listings show its prefix only
    keys = api.get("/api/v1/endpoints/digits/keys", headers=admin).json()
    assert keys[0]["prefix"] == key[:12] and "key" not in keys[0]
    stats = api.get("/api/v1/endpoints/digits/stats", headers=admin).json()["versions"][0]
    assert stats["requests"] == 2 and stats["errors"] == 0 and stats["latency_ms"]["p50"] is not None
    assert abs(sum(stats["predictions"].values()) - 1) < 1e-6 and stats["drift_psi_max"] is not None


def test_concurrent_callers_each_get_their_own_predictions(serving_api, identities, serving_settings) -> None:  # type: ignore[no-untyped-def]
    # Under load the gateway joins waiting callers' inputs into one call to Serve (two calls in flight per
    # replica); each caller must still get exactly its own predictions back, in order.
    api, admin = serving_api, identities.admin.headers
    key = deployed(api, admin, serving_settings, "joined")["key"]["key"]
    wait_endpoint(api, admin, "joined")
    auth = {"Authorization": f"Bearer {key}"}
    callers = [[[float((i * 7 + j) % 17)] * 64 for j in range(1 + i % 3)] for i in range(24)]

    def predict(inputs: list[list[float]]) -> list[dict]:  # type: ignore[type-arg]
        response = api.post("/api/v1/endpoints/joined/predict", json={"inputs": inputs}, headers=auth)
        assert response.status_code == 200, response.text
        return response.json()["predictions"]  # type: ignore[no-any-return]

    alone = [predict(inputs) for inputs in callers]
    with ThreadPoolExecutor(len(callers)) as pool:
        together = list(pool.map(predict, callers))
    for inputs, expected, got in zip(callers, alone, together, strict=True):
        assert len(got) == len(inputs)
        for one, other in zip(expected, got, strict=True):
            assert one["class"] == other["class"]
            assert one["probabilities"] == pytest.approx(other["probabilities"], abs=1e-5)
    stats = api.get("/api/v1/endpoints/joined/stats", headers=admin).json()["versions"][0]
    assert stats["requests"] == 2 * len(callers)


def test_predict_refuses_bad_keys_and_bad_inputs(serving_api, identities, serving_settings) -> None:  # type: ignore[no-untyped-def]
    api, admin = serving_api, identities.admin.headers
    key = deployed(api, admin, serving_settings, "guarded", max_inputs=4)["key"]["key"]
    wait_endpoint(api, admin, "guarded")
    url = "/api/v1/endpoints/guarded/predict"
    auth = {"Authorization": f"Bearer {key}"}
    assert api.post(url, json={"inputs": digits_inputs(1)}).status_code == 401
    wrong = api.post(url, json={"inputs": digits_inputs(1)}, headers={"Authorization": "Bearer dlje_nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    short = api.post(url, json={"inputs": [[1.0] * 64, [1.0] * 63]}, headers=auth)
    assert short.status_code == 422
    error = short.json()["error"]
    assert error["code"] == "invalid_input" and error["details"][0]["field"] == "inputs[1]"
    assert "expected 64 values" in error["message"]
    text = api.post(url, json={"inputs": [["a"] * 64]}, headers=auth)
    assert text.status_code == 422 and text.json()["error"]["details"][0]["field"] == "inputs[0][0]"
    many = api.post(url, json={"inputs": digits_inputs(5)}, headers=auth)
    assert many.status_code == 422 and "at most 4" in many.json()["error"]["message"]
    huge = api.post(
        url,
        content=b'{"inputs": [' + b"1," * 2_000_000 + b"1]}",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    outsider = identities.user(identities.project())
    assert api.post(url, json={"inputs": digits_inputs(1)}, headers=outsider.headers).status_code == 404
    assert api.get("/api/v1/endpoints/guarded", headers=outsider.headers).status_code == 404
    # a revoked key stops working (at once on this controller)
    key_id = api.get("/api/v1/endpoints/guarded/keys", headers=admin).json()[0]["id"]
    assert api.delete(f"/api/v1/endpoints/guarded/keys/{key_id}", headers=admin).status_code == 200
    assert api.post(url, json={"inputs": digits_inputs(1)}, headers=auth).status_code == 401
    # the credential is judged before the endpoint: a bad one learns nothing about which endpoints exist
    missing = "/api/v1/endpoints/missing/predict"
    assert api.post(missing, json={"inputs": [[0]]}, headers=auth).status_code == 401
    assert api.post(missing, json={"inputs": [[0]]}).status_code == 401
    assert api.post(missing, json={"inputs": [[0]]}, headers=admin).status_code == 404
