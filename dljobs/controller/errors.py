"""Errors the API answers with: one JSON shape (`dljobs.spec.api.ErrorResponse`) and a stable `code`."""

from __future__ import annotations

from dataclasses import dataclass, field

from dljobs.spec.errors import FieldError


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str
    details: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def invalid(field_path: str, message: str, code: str = "invalid_spec") -> ApiError:
    return ApiError(422, code, f"{field_path}: {message}", [FieldError(field_path, message)])


def conflict(code: str, message: str) -> ApiError:
    return ApiError(409, code, message)


def forbidden(message: str = "this needs an admin token") -> ApiError:
    return ApiError(403, "forbidden", message)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
