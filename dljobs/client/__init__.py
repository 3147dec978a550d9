"""The SDK: a typed HTTP client of the controller. The CLI talks only to this."""

from dljobs.client.errors import (
    ApiRequestError,
    ConnectionFailed,
    DljobsError,
    InvalidInput,
    NotFound,
    Unauthorized,
)
from dljobs.client.http import Client

__all__ = [
    "ApiRequestError",
    "Client",
    "ConnectionFailed",
    "DljobsError",
    "InvalidInput",
    "NotFound",
    "Unauthorized",
]
