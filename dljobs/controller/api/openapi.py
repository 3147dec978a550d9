"""The OpenAPI document as the API really answers: bearer auth on everything but health, and the one error
shape (`ErrorResponse`) for every 4xx and 503, where FastAPI would document its own `HTTPValidationError`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from dljobs.spec.api import ErrorResponse

_OPEN = {"health"}  # tags whose operations answer without a token
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_ERROR_CONTENT = {"application/json": {"schema": _ERROR_REF}}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ErrorResponse"] = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schemas["ErrorResponse"].pop("$defs", {}))
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "a dljobs user token (dlj_...)"}
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's HTTPValidationError: the API answers with ErrorResponse
            if set(operation.get("tags", ())) & _OPEN:
                continue
            operation["security"] = [{"bearer": []}]
            responses["4XX"] = {
                "description": "refused: the error names its code and field",
                "content": _ERROR_CONTENT,
            }
            responses["503"] = {
                "description": "a service the controller needs is unavailable; retry (Retry-After)",
                "content": _ERROR_CONTENT,
            }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document
