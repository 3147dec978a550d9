"""From text, a file or a JSON body to a validated JobSpec, with errors that name field and line."""

from __future__ import annotations

import copy
import re
import types
import typing
from pathlib import Path as FsPath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dljobs.spec.errors import FieldError, SpecError
from dljobs.spec.job import JobSpec
from dljobs.spec.params import BUILTIN_MODELS
from dljobs.spec.suggest import did_you_mean
from dljobs.spec.yaml_source import MAX_SPEC_BYTES, LineMap, Path, line_of, parse_yaml

MAX_OVERRIDES = 256
_FIELD_PREFIX = re.compile(r"^([a-z_]+(?:\.[a-z_]+)+): (.+)$", re.S)


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_spec_file(path: str | FsPath, overrides: list[str] | None = None) -> JobSpec:
    """Read and validate a spec file; every error names the file, the field and the line."""
    file = FsPath(path)
    try:
        if not file.is_file():
            raise SpecError(
                [FieldError("", "no such file" if not file.exists() else "not a file")],
                code="spec_not_found",
                source=str(path),
            )
        if file.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(
                [
                    FieldError(
                        "",
                        f"the spec is {file.stat().st_size:,} bytes; the limit is {MAX_SPEC_BYTES:,} (1 MiB)",
                    )
                ],
                code="spec_too_large",
            )
        data = file.read_bytes()
    except OSError as exc:
        raise SpecError(
            [FieldError("", f"cannot read: {exc.strerror}")], code="spec_not_found", source=str(path)
        ) from None
    try:
        return load_spec_text(data, overrides)
    except SpecError as exc:
        exc.source = str(path)
        raise


def load_spec_text(data: bytes | str, overrides: list[str] | None = None) -> JobSpec:
    document, lines = parse_yaml(data)
    set_paths = apply_overrides(document, overrides or [])
    return validate_spec(document, lines, set_paths)


def apply_overrides(document: dict[str, Any], overrides: list[str]) -> set[Path]:
    """Apply `a.b.c=value` overrides in place (values read as YAML scalars); returns the paths set."""
    if len(overrides) > MAX_OVERRIDES:
        raise SpecError([FieldError("", f"more than {MAX_OVERRIDES} --set overrides")])
    done: set[Path] = set()
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise SpecError(
                [FieldError(key or item, f"--set '{item}': expected FIELD.PATH=VALUE")],
                code="invalid_override",
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        parts = key.split(".")
        node: Any = document
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise SpecError(
                    [FieldError(where, f"--set {key}: {where} is not a section")], code="invalid_override"
                )
            node = child
        node[parts[-1]] = value
        done.add(tuple(parts))
    return done


def validate_spec(document: Any, lines: LineMap | None = None, set_paths: set[Path] | None = None) -> JobSpec:
    """Validate a parsed document (from YAML or a JSON body) into a JobSpec."""
    if not isinstance(document, dict):
        raise SpecError([FieldError("", "a job spec is a mapping of keys (name:, workload:, ...)")])
    try:
        return JobSpec.model_validate(document)
    except ValidationError as exc:
        raise SpecError(_field_errors(exc, document, lines or {}, set_paths or set())) from None
    except RecursionError:
        raise SpecError([FieldError("", "the spec is nested too deeply")], code="spec_too_complex") from None


def read_stored_spec(stored: dict[str, Any]) -> JobSpec:
    """Tolerant read of a spec from storage: keys a newer version added are dropped, not refused."""
    data = copy.deepcopy(stored)
    for _ in range(32):
        try:
            return JobSpec.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
            extras = [e["loc"] for e in errors if e["type"] == "extra_forbidden"]
            if not extras or len(extras) != len(errors):
                raise
            for loc in extras:
                parent: Any = data
                for part in loc[:-1]:
                    parent = parent[part]
                parent.pop(loc[-1], None)
    return JobSpec.model_validate(data)


def _field_errors(
    exc: ValidationError, document: dict[str, Any], lines: LineMap, set_paths: set[Path]
) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        loc: Path = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            message = f"unknown field '{key}'{did_you_mean(key, _fields_at(loc[:-1], document))}"
        elif kind == "missing":
            message = "required field is missing"
        else:
            message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            # A check that spans sections names its field first ("training.precision: ..."): point there.
            target = _FIELD_PREFIX.match(message)
            if target and not loc:
                loc = tuple(target.group(1).split("."))
                message = target.group(2)
        line = None if loc in set_paths else line_of(loc, lines)
        if loc in set_paths:
            message += " (from --set)"
        error = FieldError(format_path(loc), message, line)
        if error not in out:
            out.append(error)
    return out


def _fields_at(path: Path, document: dict[str, Any]) -> list[str]:
    """Field names of the model found at `path` in JobSpec, for did-you-mean."""
    model: type[BaseModel] | None = JobSpec
    for part in path:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return []
        if model.__name__ == "WorkloadSpec" and part == "params":
            name = (document.get("workload") or {}).get("model")
            model = BUILTIN_MODELS.get(name) if isinstance(name, str) else None
            continue
        model = _model_in(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
