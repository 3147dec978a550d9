"""The API fuzzed from its own OpenAPI document (schemathesis, in-process, authenticated), on SQLite and
PostgreSQL: schema-conforming and schema-violating requests to every operation, grouped in endpoint families.

Whatever is sent: no 5xx, no stack trace or server file path in a response, and every response is one the
document declares (status code, content type, body schema). Each family gets at least `CASES` requests on
SQLite; PostgreSQL runs a fifth of them (the same generation, derandomized, so a failure reproduces).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.serialization import serialize_binary

from dljobs.storage import open_store
from tests.conftest import ADMIN_TOKEN
from tests.support.factories import command_spec
from tests.support.jobs import submit
from tests.support.serving import trained_job

CASES = int(os.environ.get("FUZZ_CASES", "1000"))  # per family on SQLite; scale a run with FUZZ_CASES
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
# A server-side stack trace, or a path of the server's files, in any response
LEAK = re.compile(rb"Traceback \(most recent call last\)|File \"/|site-packages|/dljobs/controller/")


@schemathesis.serializer("application/zip")
def _zip(context: schemathesis.SerializationContext, value: Any) -> dict[str, bytes]:
    return {"data": serialize_binary(value)}


def family(path: str, tags: list[str]) -> str:
    """Endpoint families, as the API reference groups them."""
    if "/trials" in path:
        return "trials"
    if tags[0] in ("health", "operations"):
        return "operations"
    return tags[0]


def _bundle() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("train.py", "print('hi')\n")
    return buffer.getvalue()


def _seed(api, settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Real rows for the generated requests to find: jobs (one finished), a bundle, a webhook, a token, a
    registered model and an endpoint with its key."""
    queued = submit(api, AUTH, command_spec(name="fuzz-queued"))
    finished = submit(api, AUTH, command_spec(name="fuzz-done"))
    assert api.post(f"/api/v1/jobs/{finished['id']}/cancel", headers=AUTH).status_code == 200
    open_store(settings.storage_url).put_bytes(f"jobs/{finished['id']}/model.pt", b"w")
    bundle = _bundle()
    sha = hashlib.sha256(bundle).hexdigest()
    assert api.put(f"/api/v1/bundles/{sha}", content=bundle, headers=AUTH).status_code == 201
    hook = api.post(
        "/api/v1/projects/default/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=AUTH
    )
    assert hook.status_code == 201, hook.text
    throwaway = api.post("/api/v1/tokens", json={"name": "throwaway"}, headers=AUTH).json()["id"]
    trained = trained_job(api, AUTH, settings, name="fuzz-model")
    endpoint = api.post(
        "/api/v1/endpoints", json={"name": "fuzz-endpoint", "job": str(trained["id"])}, headers=AUTH
    )
    assert endpoint.status_code == 201, endpoint.text
    return {
        "job": [str(queued["id"]), str(finished["id"]), "fuzz-done"],
        "job_id": [queued["id"], finished["id"]],
        "name": ["default", "fuzz-model", "fuzz-endpoint"],
        "version": [1],
        "key_id": [endpoint.json()["key"]["id"]],
        "sha256": [sha],
        "webhook_id": [hook.json()["id"]],
        "token_id": [throwaway],
        "path": ["model.pt"],
    }


def _strategies(operation, known: dict[str, list[Any]]) -> list[st.SearchStrategy]:  # type: ignore[no-untyped-def]
    names = [p.name for p in operation.path_parameters]
    out = []
    query = {"follow": "false"} if operation.path.endswith("/logs") else None  # a queued job's log never ends
    if not (operation.method.upper() == "DELETE" and "token_id" in names):  # random ids could revoke ours
        out.append(operation.as_strategy(GenerationMode.POSITIVE, query=query))
    if operation.path.endswith("/predict"):  # nothing serves the seeded endpoint here: it answers 503
        known = {**known, "name": [n for n in known["name"] if n != "fuzz-endpoint"]}
    if names:
        out.append(
            st.fixed_dictionaries({name: st.sampled_from(known[name]) for name in names}).flatmap(
                lambda fixed: operation.as_strategy(
                    GenerationMode.POSITIVE, path_parameters=fixed, query=query
                )
            )
        )
    if operation.path_parameters or operation.query or operation.body or operation.headers:
        try:
            negative = operation.as_strategy(GenerationMode.NEGATIVE, query=query)
        except Exception:  # nothing left to negate once the fixed parts are taken out
            negative = None
        if negative is not None:
            out.append(negative)
    return out


def _send(api, case, known: dict[str, list[Any]]) -> Any:  # type: ignore[no-untyped-def]
    revoked = (case.path_parameters or {}).get("token_id")
    if case.method == "DELETE" and str(revoked).isdigit():  # never our own token: only the throwaway one
        case.path_parameters["token_id"] = known["token_id"][0]
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=AUTH)
    data = kwargs.pop("data", None)
    if isinstance(data, str):
        data = data.encode()
    return api.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs.get("headers"),
        cookies=kwargs.get("cookies") or None,
        json=kwargs.get("json"),
        content=data if isinstance(data, bytes) else None,
        data=data if isinstance(data, dict) else None,
    )


def test_the_api_holds_under_schema_fuzzing(api, settings: Any, database_url: str) -> None:  # type: ignore[no-untyped-def]
    known = _seed(api, settings)
    raw = api.get("/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    families: dict[str, list[Any]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        families.setdefault(family(operation.path, operation.tags or ["untagged"]), []).append(operation)
    cases = CASES if database_url.startswith("sqlite") else CASES // 5
    sent: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for name, operations in sorted(families.items()):
        examples = cases if name != "operations" else cases // 10  # three operations without inputs
        strategy = st.one_of([s for op in operations for s in _strategies(op, known)])

        @fuzz_settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing request is printed as sent
        )
        @given(case=strategy)
        def fuzz(case) -> None:  # type: ignore[no-untyped-def]
            response = _send(api, case, known)
            sent[name] += 1  # noqa: B023
            statuses[response.status_code] += 1
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
            assert not LEAK.search(response.content), (case.method, case.formatted_path, response.text[:500])
            if "authorization" in response.request.headers:  # sent with our token: it must still be good
                assert response.status_code != 401, (case.method, case.formatted_path, response.text)
            else:  # a negative case that leaves the token out: refused (or matched no route at all)
                assert response.status_code == 401 or response.json()["error"]["message"] == "Not Found", (
                    case.method,
                    case.formatted_path,
                    response.text,
                )
            case.validate_response(response, checks=CHECKS)

        fuzz()
    print(f"fuzzed ({database_url.split(':')[0]}): {dict(sent)}; statuses {dict(sorted(statuses.items()))}")
    big = {name for name, ops in families.items() if name != "operations"}
    assert all(sent[name] >= cases for name in big), sent


def test_what_the_fuzzing_found_stays_fixed(api, settings) -> None:  # type: ignore[no-untyped-def]
    """Each of these was a 500 (or, on PostgreSQL, an overflow) before."""
    import base64

    from tests.support.jobs import job_token

    job = submit(api, AUTH, command_spec())
    token = job_token(settings.database_url, job["id"])
    huge = "9" * 30
    for method, path, status, field in [
        ("POST", f"/api/v1/jobs/{huge}/metrics", 422, "job_id"),
        ("GET", f"/api/v1/jobs/{huge}", 404, None),
        ("GET", f"/api/v1/jobs/{2**63}/events", 404, None),
        ("GET", "/api/v1/jobs/%C2%B2", 404, None),  # '²' is a digit to str.isdigit, not to int()
        ("DELETE", f"/api/v1/tokens/{2**31}", 422, "token_id"),
        ("GET", f"/api/v1/projects/default/webhooks/{huge}/deliveries", 422, "webhook_id"),
    ]:
        response = api.request(method, path, json={"points": []} if method == "POST" else None, headers=AUTH)
        assert response.status_code == status, (method, path, response.text)
        if field:
            assert response.json()["error"]["details"][0]["field"] == field
    twice = api.post(
        "/api/v1/users", json={"name": "twice", "projects": ["default", "default"]}, headers=AUTH
    )
    assert twice.status_code == 201 and twice.json()["projects"] == ["default"], twice.text
    cursor = base64.urlsafe_b64encode(f"j{huge}".encode()).decode().rstrip("=")
    listed = api.get("/api/v1/jobs", params={"cursor": cursor}, headers=AUTH)
    assert listed.status_code == 422 and listed.json()["error"]["details"][0]["field"] == "cursor"
    # a report time no datetime holds is taken as "now"; an epoch past PostgreSQL's integer is refused
    far = api.post(
        f"/api/v1/jobs/{job['id']}/metrics",
        json={"points": [{"name": "loss", "step": 0, "value": 1.0, "ts": 1e18}]},
        headers=token,
    )
    assert far.status_code == 200 and far.json()["accepted"] == 1, far.text
    epoch = api.post(
        f"/api/v1/jobs/{job['id']}/metrics",
        json={"points": [{"name": "loss", "step": 1, "epoch": 2**31, "value": 1.0}]},
        headers=token,
    )
    assert epoch.status_code == 422 and epoch.json()["error"]["details"][0]["field"] == "points.0.epoch"


def test_the_openapi_document_declares_what_the_api_answers(api) -> None:  # type: ignore[no-untyped-def]
    document = api.get("/api/v1/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path in ("/api/v1/health", "/api/v1/ready"):
                assert "security" not in operation
                continue
            assert operation["security"] == [{"bearer": []}], (method, path)
            error = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path)
    bundle = document["paths"]["/api/v1/bundles/{sha256}"]
    assert bundle["get"]["responses"]["200"]["content"] == {}
    assert "application/zip" in bundle["put"]["requestBody"]["content"]
