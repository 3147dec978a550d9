"""Errors a user can fix (bad data, a missing column, a parameter of the wrong shape).

The runner reports them as the job's failure reason in one line, naming the spec field; anything else is a
bug or an infrastructure failure and keeps its traceback in the job's logs.
"""

from __future__ import annotations


class WorkloadError(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message
