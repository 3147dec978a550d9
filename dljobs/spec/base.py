"""Building blocks shared by every spec section: strict input models, names, durations, sizes."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema

from dljobs.spec.durations import format_duration, parse_duration
from dljobs.spec.errors import shown

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_NAME = re.compile(NAME_PATTERN)


class StrictModel(BaseModel):
    """Input model: an unknown key is an error (a typo must not be silently ignored), and a value of the
    wrong type is refused rather than converted (`epochs: yes` is not 1, `lr: "0.1"` is not a number)."""

    model_config = ConfigDict(extra="forbid", validate_default=False, str_strip_whitespace=False, strict=True)


def is_name(value: str) -> bool:
    """A valid name, whole (re's `$` alone would let a trailing newline through)."""
    return _NAME.fullmatch(value) is not None


def _check_name(value: str) -> str:
    if not is_name(value):
        raise ValueError(
            f"{shown(value)} is not a name: use 1-63 lowercase letters, digits and '-', starting and "
            "ending with a letter or digit (no spaces, slashes or control characters)"
        )
    return value


Name = Annotated[
    str, AfterValidator(_check_name), WithJsonSchema({"type": "string", "pattern": NAME_PATTERN})
]


def _duration(value: object) -> int:
    if not isinstance(value, str | int | float):
        raise ValueError("expected a duration such as 90s, 30m, 2h or 1d")
    return parse_duration(value)


# What the JSON Schema (`dljobs schema`) accepts, as the validators read it: `2h`, `1d12h`, `90 s` or seconds.
_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": r"^ *([0-9]+(\.[0-9]+)? *[smhdSMHD] *)+$|^ *[0-9]+(\.[0-9]+)? *$"},
        {"type": "number", "exclusiveMinimum": 0},
    ]
}
_SIZE_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": r"^ *[0-9]+(\.[0-9]+)? *(Ki|Mi|Gi|Ti|K|M|G|T)? *$"},
        {"type": "integer", "exclusiveMinimum": 0},
    ]
}

Duration = Annotated[
    int,
    BeforeValidator(_duration),
    PlainSerializer(lambda seconds: format_duration(seconds), return_type=str, when_used="json"),
    WithJsonSchema(_DURATION_SCHEMA),
]

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_SIZE_UNITS = {
    None: 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def parse_size(value: object) -> int:
    """Bytes in a Kubernetes-style quantity (`512Mi`, `8Gi`, `2G`) or a plain integer."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("expected a size such as 512Mi or 8Gi")
    match = _SIZE.match(str(value).strip())
    if not match:
        raise ValueError(f"{shown(value)} is not a size: use a number with Ki, Mi, Gi or Ti, such as 8Gi")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size <= 0:
        raise ValueError("a size must be positive")
    return size


ByteSize = Annotated[int, BeforeValidator(parse_size), WithJsonSchema(_SIZE_SCHEMA)]

Mode = Literal["auto", "min", "max"]

# Metrics whose best value is the largest; everything else (losses, errors) is minimised.
_MAXIMISED = ("accuracy", "precision", "recall", "f1", "auc", "r2")


def resolve_mode(metric: str, mode: str) -> Literal["min", "max"]:
    """The direction in which `metric` improves: explicit, or guessed from its name."""
    if mode in ("min", "max"):
        return mode  # type: ignore[return-value]
    return "max" if any(metric.endswith(k) for k in _MAXIMISED) else "min"
