"""Typed errors the SDK raises; each carries the API's stable `code` and knows its CLI exit code."""

from __future__ import annotations

from dataclasses import dataclass, field

from dljobs.spec.errors import FieldError

EXIT_OK = 0
EXIT_FAILED = 1  # the job failed, or the server (or the connection to it) did
EXIT_INVALID = 2  # the input was wrong: a spec, an argument, a job that does not exist


@dataclass
class DljobsError(Exception):
    message: str
    code: str = "error"
    details: list[FieldError] = field(default_factory=list)
    status: int | None = None
    exit_code: int = EXIT_FAILED

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ApiRequestError(DljobsError):
    """The server answered with an error."""


class InvalidInput(ApiRequestError):
    def __post_init__(self) -> None:
        self.exit_code = EXIT_INVALID
        super().__post_init__()


class NotFound(InvalidInput):
    pass


class Unauthorized(ApiRequestError):
    pass


class Conflict(ApiRequestError):
    pass


class ServerError(ApiRequestError):
    pass


class ConnectionFailed(DljobsError):
    """The controller could not be reached."""


def from_response(status: int, body: object) -> ApiRequestError:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code", "error"))
    message = str(error.get("message", "")) or f"the server answered {status}"
    details = [
        FieldError(str(d.get("field", "")), str(d.get("message", "")), d.get("line"))
        for d in error.get("details") or []
        if isinstance(d, dict)
    ]
    kind: type[ApiRequestError]
    if status == 404:
        kind = NotFound
    elif status in (400, 413, 415, 422):
        kind = InvalidInput
    elif status in (401, 403):
        kind = Unauthorized
    elif status == 409:
        kind = Conflict
    else:
        kind = ServerError
    return kind(message, code=code, details=details, status=status)
