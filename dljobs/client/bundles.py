"""Zip a `code:` directory the way git sees it: `.gitignore` honoured, deterministic, size-capped.

The same content always gives the same bytes and so the same SHA-256, which the server uses to store each
bundle once.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from dljobs.spec.errors import FieldError, SpecError

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
ALWAYS_IGNORED = [".git/", "__pycache__/", "*.pyc", ".DS_Store"]
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Bundle:
    data: bytes
    sha256: str
    files: int
    raw_bytes: int


def _error(message: str) -> SpecError:
    return SpecError([FieldError("workload.code", message)], code="invalid_code")


def build_bundle(directory: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Bundle:
    if not directory.is_dir():
        raise _error(f"no directory {directory}")
    root = directory.resolve()
    specs: list[tuple[str, GitIgnoreSpec]] = [("", GitIgnoreSpec.from_lines(ALWAYS_IGNORED))]
    files: list[tuple[str, Path]] = []
    total = 0
    for current, dirs, names in os.walk(root, followlinks=False):
        base = Path(current)
        rel_dir = base.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        ignore_file = base / ".gitignore"
        if ignore_file.is_file():
            try:
                lines = ignore_file.read_text(errors="replace").splitlines()
            except OSError as exc:
                raise _error(f"cannot read {ignore_file}: {exc.strerror}") from None
            specs.append((rel_dir, GitIgnoreSpec.from_lines(lines)))
        dirs[:] = sorted(d for d in dirs if not _ignored(specs, _join(rel_dir, d) + "/"))
        for name in sorted(names):
            rel = _join(rel_dir, name)
            path = base / name
            if _ignored(specs, rel):
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.is_file() or not target.is_relative_to(root):
                    continue  # links that leave the directory are not shipped
            elif not path.is_file():
                continue
            total += path.stat().st_size
            if total > max_bytes:
                raise _error(
                    f"{directory} holds more than {max_bytes / 2**20:.0f} MiB after .gitignore; "
                    "ignore data and outputs (.gitignore) or read them from data.source"
                )
            files.append((rel, path))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for rel, path in files:
            info = zipfile.ZipInfo(rel, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            archive.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    return Bundle(data, hashlib.sha256(data).hexdigest(), len(files), total)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _ignored(specs: list[tuple[str, GitIgnoreSpec]], rel: str) -> bool:
    """Git's rule: the deepest .gitignore with a matching pattern decides; `!pattern` re-includes."""
    ignored = False
    for where, spec in specs:
        if where and not rel.startswith(where + "/"):
            continue
        result = spec.check_file(rel[len(where) + 1 :] if where else rel)
        if result.include is not None:
            ignored = result.include
    return ignored
