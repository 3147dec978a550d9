"""A sweep's `space` checked against the job it searches: every path names a field the job has, and every
value its distribution can give is one the field accepts (its type and its bounds), before anything runs.

Each value is written into the job's spec and the spec validated again, so a space is held to exactly the
rules a hand-written spec is: `training.batch_size: {uniform: [16, 64]}` fails as `batch_size: 16.5` would.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from dljobs.spec.errors import shown
from dljobs.spec.job import JobSpec
from dljobs.spec.params import BUILTIN_MODELS
from dljobs.spec.suggest import did_you_mean
from dljobs.spec.sweep import Distribution, set_path, trial_document
from dljobs.spec.yaml_source import Path

Describe = Callable[[str, object, dict[str, Any]], str | None]


def space_errors(spec: JobSpec, describe: Describe) -> list[tuple[Path, str]]:
    """(location under the spec, message) for each problem of the sweep's space; [] when it is sound."""
    if spec.sweep is None:
        return []
    base = spec.model_dump(mode="json")
    problems: list[tuple[Path, str]] = []
    for path, distribution in spec.sweep.space.items():
        where: Path = ("sweep", "space", path)
        missing = _missing(spec, path)
        if missing is not None:
            problems.append((where, missing))
            continue
        for value in distribution.samples():
            message = _refusal(base, path, value, distribution, describe)
            if message is not None:
                problems.append(((*where, distribution.kind), message))
                break
    return problems


def _missing(spec: JobSpec, path: str) -> str | None:
    """Why `path` names no field of this job, or None when it does."""
    parts = path.split(".")
    model: type[BaseModel] | None = JobSpec
    for depth, part in enumerate(parts):
        if model is None:
            return None  # custom code's params: the code reads whatever it is given
        fields = list(model.model_fields)
        if part not in fields:
            where = ".".join(parts[:depth]) or "the spec"
            return f"{where} has no field {shown(part)}{did_you_mean(part, fields)}"
        if model is JobSpec.model_fields["workload"].annotation and part == "params":
            model = BUILTIN_MODELS.get(spec.workload.model or "")
            continue
        model = _model_in(model.model_fields[part].annotation)
    if model is not None:
        return f"{path} is a section: name one of its fields ({', '.join(model.model_fields)})"
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None


def _refusal(
    base: dict[str, Any], path: str, value: Any, distribution: Distribution, describe: Describe
) -> str | None:
    document = trial_document(base, {})
    document = copy.deepcopy(document)
    set_path(document, path, value)
    try:
        JobSpec.model_validate(document)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        kind = error["type"]
        if kind.startswith("int_") and distribution.kind in ("uniform", "loguniform"):
            return (
                f"{distribution.kind} gives numbers with fractions and {path} takes whole numbers: "
                "use randint or choice"
            )
        said = describe(kind, error.get("input"), error.get("ctx") or {}) or error["msg"]
        said = said.removeprefix("Value error, ")
        blamed = ".".join(str(p) for p in error["loc"])
        at = "" if blamed == path else f" ({blamed})"
        return f"{distribution.kind} value {shown(value)} does not fit {path}{at}: {said}"
    return None
