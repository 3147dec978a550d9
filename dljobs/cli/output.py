"""Printing: tables and colours for people, JSON for scripts (`-o json`), one-line errors on stderr."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pydantic import BaseModel
    from rich.console import Console
    from rich.table import Table


class Output(StrEnum):
    table = "table"
    json = "json"


STATUS_STYLE = {
    "QUEUED": "cyan",
    "STARTING": "blue",
    "RUNNING": "bold blue",
    "CANCELLING": "yellow",
    "RETRYING": "yellow",
    "SUCCEEDED": "green",
    "FAILED": "bold red",
    "CANCELLED": "magenta",
    "TIMED_OUT": "red",
}

_console: Console | None = None
_err: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False, soft_wrap=True)
    return _console


def err_console() -> Console:
    global _err
    if _err is None:
        from rich.console import Console

        _err = Console(stderr=True, highlight=False, soft_wrap=True)
    return _err


def print_json(data: Any) -> None:
    """JSON on stdout, uncoloured, for scripts."""
    if hasattr(data, "model_dump"):
        data = data.model_dump(mode="json")
    elif isinstance(data, list):
        data = [d.model_dump(mode="json") if hasattr(d, "model_dump") else d for d in data]
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_models(items: BaseModel | list[BaseModel]) -> None:
    print_json(items)


def new_table(columns: Iterable[str], fold: Iterable[str] = ()) -> Table:
    """A borderless table with bold headers; the columns named in `fold` wrap instead of being cut."""
    from rich.table import Table

    folded = set(fold)
    result = Table(box=None, header_style="bold")
    for column in columns:
        result.add_column(column, overflow="fold" if column in folded else "ellipsis")
    return result


def status_text(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def ago(when: datetime | None) -> str:
    if when is None:
        return "-"
    seconds = (datetime.now(UTC) - when).total_seconds()
    if seconds < 60:
        return f"{max(seconds, 0):.0f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h ago"
    return f"{seconds / 86400:.1f}d ago"


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "-"
    seconds = ((end or datetime.now(UTC)) - start).total_seconds()
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def error(message: str) -> None:
    """One line on stderr."""
    err_console().print(f"[bold red]error:[/] {escape(message)}")


def note(message: str) -> None:
    err_console().print(f"[dim]{escape(message)}[/]")


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)
