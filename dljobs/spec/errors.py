"""Errors that name the field (and, for YAML, the line) a user got wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Characters that would break "one problem, one line": C0/C1 controls and Unicode line separators.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_SHOWN = 60


def one_line(text: str) -> str:
    """`text` with every control character written as an escape (`\\n`, `\\x01`), so it prints on one line."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def shown(value: object) -> str:
    """A value the user wrote, quoted for a message: on one line, and cut short when it is long."""
    text = one_line(str(value))
    if len(text) > MAX_SHOWN:
        text = text[: MAX_SHOWN - 3] + "..."
    return f"'{text}'"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: `path` is dotted (`training.optimizer.lr`), '' for the document.
    Path and message are kept to one line whatever the user wrote."""

    path: str
    message: str
    line: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", one_line(self.path))
        object.__setattr__(self, "message", one_line(self.message))

    def render(self) -> str:
        where = self.path or "spec"
        if self.line is not None:
            where = f"{where} (line {self.line})"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"field": self.path, "message": self.message, "line": self.line}


@dataclass
class SpecError(Exception):
    """A spec that cannot be accepted. `code` is stable and shared with the API's error shape."""

    errors: list[FieldError]
    code: str = "invalid_spec"
    source: str | None = None  # the file name, when there is one
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.summary())

    def summary(self) -> str:
        """One line: the first problem, and how many more there are."""
        first = self.errors[0].render() if self.errors else "invalid spec"
        prefix = f"{one_line(self.source)}: " if self.source else ""
        more = len(self.errors) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
        return f"{prefix}{first}{suffix}"

    def __str__(self) -> str:
        return self.summary()


def spec_error(path: str, message: str, line: int | None = None, code: str = "invalid_spec") -> SpecError:
    return SpecError([FieldError(path, message, line)], code=code)
