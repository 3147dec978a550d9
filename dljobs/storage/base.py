"""The store interface, and the key rules that keep every path inside its store."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_BAD_KEY = re.compile(r"[\x00-\x1f\x7f\\]")


class StorageError(Exception):
    """The store could not do what was asked (unreachable, denied, missing)."""


class KeyNotFound(StorageError):
    pass


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


def check_key(key: str) -> str:
    """A normalised relative key, or ValueError for one that could leave its prefix.

    Refuses absolute paths, `..` segments, backslashes and control characters, after percent-decoding too.
    """
    from urllib.parse import unquote

    for candidate in {key, unquote(key), unquote(unquote(key))}:
        if not candidate or candidate.startswith("/") or _BAD_KEY.search(candidate):
            raise ValueError(f"invalid artifact path '{key}'")
        if any(part in ("..", ".") for part in candidate.split("/")):
            raise ValueError(f"invalid artifact path '{key}'")
    normalised = posixpath.normpath(key)
    if normalised.startswith("..") or normalised.startswith("/"):
        raise ValueError(f"invalid artifact path '{key}'")
    return normalised


def join_url(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])


class ArtifactStore(Protocol):
    url: str  # file:///dir or s3://bucket/prefix

    def url_for(self, key: str) -> str: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def put_file(self, key: str, path: Path) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def download(self, key: str, path: Path) -> None: ...

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def list(self, prefix: str = "") -> list[ObjectInfo]: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def child(self, prefix: str) -> ArtifactStore:
        """The same store narrowed to a sub-prefix."""
        ...
