"""The docs describe the code as it is: the state machine's edges and the spec reference's fields."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from dljobs.spec.job import JobSpec
from dljobs.spec.params import BUILTIN_MODELS
from dljobs.spec.status import TRANSITIONS, JobStatus

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_drawn_state_machine_is_the_coded_one() -> None:
    text = (DOCS / "state-machine.md").read_text()
    drawn = {(a, b) for a, b in re.findall(r"^\s+([A-Z_]+) --> ([A-Z_]+)", text, re.M)}
    coded = {(old.value, new.value) for old, targets in TRANSITIONS.items() for new in targets}
    assert drawn == coded
    for status in JobStatus:
        assert f"| {status.value}" in text or status.value in text


def _fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        annotation = info.annotation
        args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out += _fields(arg, f"{path}.")
    return out


def test_the_spec_reference_names_every_field() -> None:
    text = (DOCS / "spec.md").read_text()
    missing = [path for path in _fields(JobSpec) if f"`{path}`" not in text]
    assert missing == []
    for model, params in BUILTIN_MODELS.items():
        assert f"`{model}`" in text
        del params
