"""The bad-spec corpus sent raw to POST /api/v1/jobs, on SQLite and PostgreSQL: the loader's answer (field,
line, message, code) in the one error shape, and not a row written anywhere."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from dljobs.controller.db.base import Base
from dljobs.controller.db.engine import create_engine
from dljobs.spec.errors import SpecError
from dljobs.spec.loading import load_spec_text
from dljobs.spec.yaml_source import parse_yaml
from tests.spec.bad_specs import BAD_SPECS, TWO_MIB, VALID_TEXT

YAML = {"Content-Type": "application/yaml"}


def row_counts(url: str) -> dict[str, int]:
    """Rows in every table of the schema."""

    async def run() -> dict[str, int]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return {
                    table.name: (
                        await connection.execute(select(func.count()).select_from(table))
                    ).scalar_one()
                    for table in Base.metadata.sorted_tables
                }
        finally:
            await engine.dispose()

    return asyncio.run(run())


def loader_answer(body: bytes) -> tuple[str, dict[str, Any]]:
    try:
        load_spec_text(body)
    except SpecError as exc:
        return exc.code, exc.errors[0].to_dict()
    raise AssertionError("the loader accepted a corpus entry")


def test_every_bad_spec_gets_the_loaders_answer_and_leaves_nothing(  # type: ignore[no-untyped-def]
    api, identities, clean_database: str, tmp_path: Path
) -> None:
    headers = {**identities.admin.headers, **YAML}
    before = row_counts(clean_database)
    sent, mismatches = 0, []
    for bad in (bad for bad in BAD_SPECS if bad.via_api):
        body = bad.path(tmp_path).read_bytes()
        response = api.post("/api/v1/jobs", content=body, headers=headers)
        error = response.json()["error"]
        code, detail = loader_answer(body)
        expected = (422, bad.code, {"field": bad.field, "message": detail["message"], "line": bad.line})
        got = (response.status_code, error["code"], error["details"][0] if error["details"] else None)
        if got != expected or code != bad.code or "\n" in error["message"]:
            mismatches.append(f"{bad.name}: got {got}, expected {expected}")
        sent += 1
    assert sent >= 30
    assert not mismatches, "\n".join(mismatches)
    assert api.get("/api/v1/jobs", headers=identities.admin.headers).json()["items"] == []
    assert row_counts(clean_database) == before


def test_a_spec_sent_as_json_gets_the_same_field(api, identities, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Entries whose YAML reads into a document fail in validation: as JSON they name the same field."""
    checked = 0
    for bad in (bad for bad in BAD_SPECS if bad.via_api and bad.code == "invalid_spec"):
        try:
            document, _ = parse_yaml(bad.path(tmp_path).read_bytes())
            body = json.dumps({"spec": document})
        except (SpecError, TypeError, ValueError):
            continue  # refused while reading the YAML: nothing to send as JSON
        response = api.post(
            "/api/v1/jobs",
            content=body,
            headers={**identities.admin.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 422, (bad.name, response.text)
        detail = response.json()["error"]["details"][0]
        assert (detail["field"], detail["line"]) == (bad.field, None), bad.name
        checked += 1
    assert checked >= 20
    assert api.get("/api/v1/jobs", headers=identities.admin.headers).json()["items"] == []


def test_a_body_over_the_servers_limit_is_413(api, identities, clean_database: str) -> None:  # type: ignore[no-untyped-def]
    """Up to the server's body limit (2 MiB) a spec over 1 MiB gets the loader's spec_too_large, as from the
    CLI; beyond it the server does not read the body at all. Both mean invalid input (CLI exit 2)."""
    before = row_counts(clean_database)
    headers = {**identities.admin.headers, **YAML}
    body = (VALID_TEXT + "#" * TWO_MIB).encode()
    response = api.post("/api/v1/jobs", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert row_counts(clean_database) == before


def test_a_local_code_directory_is_refused_by_field(api, identities, clean_database: str) -> None:  # type: ignore[no-untyped-def]
    """What the CLI bundles (and refuses over the cap) the server cannot read: the same field is named."""
    before = row_counts(clean_database)
    body = "name: big-code\nworkload:\n  code: ./src\n  command: python train.py\n"
    response = api.post("/api/v1/jobs", content=body, headers={**identities.admin.headers, **YAML})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "workload.code"
    assert row_counts(clean_database) == before
