"""One JSON error shape for every failure, with a stable code; never a stack trace in a response."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dljobs.controller.db.engine import lost_server
from dljobs.controller.errors import ApiError
from dljobs.spec.errors import FieldError, SpecError

log = logging.getLogger("dljobs.api")
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


def error_body(
    code: str, message: str, details: list[FieldError] | None = None, request_id: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": [d.to_dict() for d in details or []],
            "request_id": request_id,
        }
    }


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details, request_id(request)),
            exc.status,
            headers=exc.headers or None,
        )

    @app.exception_handler(SpecError)
    async def _spec(request: Request, exc: SpecError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.summary(), exc.errors, request_id(request)), 422)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
            details.append(
                FieldError(".".join(loc), str(err.get("msg", "invalid")).removeprefix("Value error, "))
            )
        message = details[0].render() if details else "invalid request"
        return JSONResponse(error_body("invalid_request", message, details, request_id(request)), 422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        limit = getattr(request.state, "body_over_limit", None)
        if limit is not None:  # FastAPI read the body, hit the cap, and called it unparsable
            return _too_large_response(limit, request_id(request))
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(
            error_body(code, message, None, request_id(request)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        rid = request_id(request)
        if (
            exc.connection_invalidated
            or isinstance(exc, OperationalError | InterfaceError)
            or lost_server(exc.orig)
        ):
            log.warning("database unavailable (request %s): %s", rid, type(exc.orig).__name__)
            return JSONResponse(
                error_body("database_unavailable", "the database is unavailable; retry shortly", None, rid),
                503,
                headers={"Retry-After": "1"},
            )
        if str(getattr(exc.orig, "sqlstate", None) or "").startswith("22"):
            # a data exception (SQLSTATE class 22): a value the database cannot hold, such as a NUL
            # character or a number out of range, that validation let through
            log.warning("database refused a value (request %s): %s", rid, type(exc.orig).__name__)
            return JSONResponse(
                error_body("invalid_request", "a value in the request cannot be stored", None, rid), 422
            )
        log.exception("database error (request %s)", rid)
        return JSONResponse(error_body("internal", f"internal error (request id {rid})", None, rid), 500)

    @app.exception_handler(ConnectionError)
    @app.exception_handler(TimeoutError)
    async def _unreachable(request: Request, exc: OSError) -> JSONResponse:
        # a connection the controller opens itself refused or timed out: the database starting or
        # restarting (drivers raise these unwrapped while connecting)
        rid = request_id(request)
        log.warning("a backing service is unreachable (request %s): %s", rid, type(exc).__name__)
        return JSONResponse(
            error_body("unavailable", "a service the controller needs is unreachable; retry", None, rid),
            503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = request_id(request)
        log.exception("unexpected error (request %s)", rid)
        return JSONResponse(error_body("internal", f"internal error (request id {rid})", None, rid), 500)


class RequestIdAndSizeLimit:
    """Pure ASGI middleware: a request id on every request and response, and a cap on body sizes
    (checked on Content-Length and while the body streams in)."""

    def __init__(self, app: ASGIApp, limit: int, large_limit: int, large_prefix: str) -> None:
        self.app = app
        self.limit = limit
        self.large_limit = large_limit
        self.large_prefix = large_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = (
            given
            if given and len(given) <= 64 and given.replace("-", "").isalnum()
            else uuid.uuid4().hex[:16]
        )
        scope.setdefault("state", {})["request_id"] = rid
        limit = self.large_limit if scope["path"].startswith(self.large_prefix) else self.limit
        too_large = self._too_large(limit, rid)
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await too_large(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    scope["state"]["body_over_limit"] = limit
                    raise _BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            await too_large(send)

    @staticmethod
    def _too_large(limit: int, rid: str) -> Callable[[Send], Awaitable[None]]:
        async def respond(send: Send) -> None:
            await _too_large_response(limit, rid)({"type": "http"}, _empty_receive, send)

        return respond


def _too_large_response(limit: int, rid: str | None) -> JSONResponse:
    return JSONResponse(
        error_body("too_large", f"request body over the limit of {limit:,} bytes", None, rid), 413
    )


class _BodyTooLarge(Exception):
    pass


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}
