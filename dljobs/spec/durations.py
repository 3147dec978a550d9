"""Durations written the way people write them: `90s`, `15m`, `2h`, `1d12h`, or plain seconds."""

from __future__ import annotations

import re

from dljobs.spec.errors import shown

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?[smhd])+$")


def parse_duration(value: str | int | float) -> int:
    """Seconds in `value`; raises ValueError with a message fit for a user."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 30m, 2h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower().replace(" ", "")
        if text.startswith("-"):
            raise ValueError("a duration must be positive")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif _WHOLE.match(text):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        else:
            raise ValueError(
                f"{shown(value)} is not a duration: use a number with s, m, h or d, such as 90s, 30m, 2h"
            )
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return round(seconds)


def format_duration(seconds: float) -> str:
    """The short form that parse_duration reads back: 7200 -> '2h', 5400 -> '1h30m'."""
    seconds = round(seconds)
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)
