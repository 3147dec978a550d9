"""From text, a file or a JSON body to a validated JobSpec, with errors that name field and line."""

from __future__ import annotations

import copy
import math
import re
import types
import typing
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from dljobs.spec.errors import FieldError, SpecError, shown
from dljobs.spec.job import JobSpec
from dljobs.spec.params import BUILTIN_MODELS
from dljobs.spec.suggest import did_you_mean
from dljobs.spec.yaml_source import (
    MAX_SPEC_BYTES,
    LineMap,
    Path,
    format_path,
    line_of,
    parse_value,
    parse_yaml,
    too_large_message,
)

MAX_OVERRIDES = 256
# A model check blames one field by starting its message with the field's path: "nesterov: needs ...".
_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*): (.+)$", re.S)


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
        size = file.stat().st_size
        if size > MAX_SPEC_BYTES:
            too_large = FieldError("", too_large_message(size))
            raise SpecError([too_large], code="spec_too_large", source=str(path))
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
                [FieldError(key, f"--set {shown(item)}: expected FIELD.PATH=VALUE")],
                code="invalid_override",
            )
        try:
            value = parse_value(raw) if raw.strip() else ""
        except SpecError as exc:
            if exc.code == "spec_too_complex":
                problem = FieldError(key, f"--set {key}: {exc.errors[0].message}")
                raise SpecError([problem], code=exc.code) from None
            value = raw  # not YAML: the text as written
        parts = key.split(".")
        node: Any = document
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise SpecError(
                    [FieldError(where, f"--set {key}: {where} is a value, not a section with fields")],
                    code="invalid_override",
                )
            node = child
        node[parts[-1]] = value
        done.add(tuple(parts))
    return done


def validate_spec(document: Any, lines: LineMap | None = None, set_paths: set[Path] | None = None) -> JobSpec:
    """Validate a parsed document (from YAML or a JSON body) into a JobSpec."""
    if not isinstance(document, dict):
        raise SpecError([FieldError("", "a job spec is a mapping of keys (name:, workload:, ...)")])
    nul = _nul_path(document)
    if nul is not None:
        raise SpecError([_located(nul, "holds a NUL character", lines or {}, set_paths or set())])
    try:
        spec = JobSpec.model_validate(document)
    except ValidationError as exc:
        raise SpecError(_field_errors(exc, document, lines or {}, set_paths or set())) from None
    except RecursionError:
        raise SpecError([FieldError("", "the spec is nested too deeply")], code="spec_too_complex") from None
    if spec.sweep is not None:
        from dljobs.spec.sweep_space import space_errors

        problems = space_errors(spec, plain_message)
        if problems:
            raise SpecError(
                [_located(loc, message, lines or {}, set_paths or set()) for loc, message in problems]
            )
    return spec


def _nul_path(node: Any, path: Path = (), depth: int = 0) -> Path | None:
    """The first key or string value holding a NUL character (no database stores one in text)."""
    if depth > 64:
        return None  # deeper than any spec: validation says so
    if isinstance(node, str):
        return path if "\x00" in node else None
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        if isinstance(key, str) and "\x00" in key:
            return (*path, key)
        found = _nul_path(child, (*path, key), depth + 1)
        if found is not None:
            return found
    return None


def _located(loc: Path, message: str, lines: LineMap, set_paths: set[Path]) -> FieldError:
    from_set = any(loc[: len(p)] == p for p in set_paths)
    if from_set:
        return FieldError(format_path(loc), message + " (from --set)")
    return FieldError(format_path(loc), message, line_of(loc, lines))


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
            message = f"unknown field {shown(key)}{did_you_mean(key, _fields_at(loc[:-1], document))}"
        elif kind == "missing" and loc and isinstance(loc[-1], int):
            loc, message = loc[:-1], "has too few items"
        elif kind in ("value_error", "assertion_error"):
            message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            # A check on a whole section names the field it blames first ("nesterov: ..."): point there.
            target = _FIELD_PREFIX.match(message)
            if target and target.group(1).split(".")[0] in _fields_at(loc, document):
                loc = (*loc, *target.group(1).split("."))
                message = target.group(2)
            # A check on a mapping (a sweep's space) names the key it blames first: point there.
            node = _node_at(loc, document)
            key, sep, rest = message.partition(": ")
            if sep and isinstance(node, dict) and key in node:
                loc, message = (*loc, key), rest
        else:
            message = plain_message(kind, err.get("input"), err.get("ctx") or {}) or err["msg"]
        from_set = any(loc[: len(p)] == p for p in set_paths)
        line = None if from_set else line_of(loc, lines)
        if from_set:
            message += " (from --set)"
        error = FieldError(format_path(loc), message, line)
        if error not in out:
            out.append(error)
    return out


_SECTION = "expected a section of fields (key: value lines)"
_EXPECTED = {
    "model_type": _SECTION,
    "model_attributes_type": _SECTION,
    "dict_type": _SECTION,
    "mapping_type": _SECTION,
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "string_unicode": "expected text",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "set_type": "expected a list",
}
_BOUNDS = {
    "greater_than": ("gt", "must be greater than"),
    "greater_than_equal": ("ge", "must be at least"),
    "less_than": ("lt", "must be less than"),
    "less_than_equal": ("le", "must be at most"),
}


def plain_message(kind: str, value: object, ctx: dict[str, Any]) -> str | None:
    """Pydantic's error `kind` in words a spec's author reads (no class names); None when not one of ours."""
    got = f", got {_describe(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number{got}"
    if kind in _EXPECTED:
        hint = ""
        if kind.startswith(("int", "float", "bool")) and isinstance(value, str):
            hint = " (write it without quotes)"
        elif kind == "string_type" and isinstance(value, int | float):
            hint = " (put it in quotes)"
        return f"{_EXPECTED[kind]}{got}{hint}"
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        bound = ctx.get(name)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)  # "greater than 0", not "greater than 0.0"
        return f"{words} {bound}{got}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        listed = str(ctx.get("expected", ""))
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        return f"must be one of {listed}{got}{hint}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} items, got {ctx.get('actual_length')}"
    if kind == "string_too_short":
        least = ctx.get("min_length")
        return "must not be empty" if least == 1 else f"needs at least {least} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        return f"{_describe(value)} does not have the form {ctx.get('pattern')}"
    if kind == "missing":
        return "required field is missing"
    if kind == "recursion_loop":
        return "refers to itself"
    return None


def _describe(value: object) -> str:
    """How a value the user wrote reads in a message: `'ten'`, `true`, `a list`."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return shown(value).strip("'")
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, dict):
        return "a section of fields"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, set | frozenset):
        return "a set"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__} value"


def _node_at(path: Path, document: Any) -> Any:
    node = document
    for part in path:
        inside = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if not inside:
            return None
        node = node[part]
    return node


def _fields_at(path: Path, document: dict[str, Any]) -> list[str]:
    """Field names of the model found at `path` in JobSpec, for did-you-mean."""
    model: type[BaseModel] | None = JobSpec
    mapping_of: type[BaseModel] | None = None  # the value model of a mapping field (a sweep's space)
    for part in path:
        if mapping_of is not None:
            model, mapping_of = mapping_of, None
            continue
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return []
        if model.__name__ == "WorkloadSpec" and part == "params":
            name = (document.get("workload") or {}).get("model")
            model = BUILTIN_MODELS.get(name) if isinstance(name, str) else None
            continue
        annotation = model.model_fields[part].annotation
        if typing.get_origin(annotation) is dict:
            mapping_of, model = _model_in(typing.get_args(annotation)[-1]), None
            continue
        model = _model_in(annotation)
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
