"""A small line chart for the terminal, in block characters (no plotting library needed)."""

from __future__ import annotations

import math

BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 40) -> str:
    """One line: the series squeezed to `width` columns, each an eighth-block level."""
    points = _resample(values, width)
    if not points:
        return ""
    low, high = min(points), max(points)
    span = high - low or 1.0
    return "".join(BLOCKS[1 + round((v - low) / span * (len(BLOCKS) - 2))] for v in points)


def chart(values: list[float], width: int = 60, height: int = 8) -> list[str]:
    """Rows of a column chart (top row first), with the high and low values on the left."""
    points = _resample(values, width)
    if not points:
        return []
    low, high = min(points), max(points)
    span = high - low or 1.0
    levels = [(v - low) / span * height for v in points]
    rows = []
    for row in range(height, 0, -1):
        line = ""
        for level in levels:
            fill = level - (row - 1)
            line += "█" if fill >= 1 else BLOCKS[max(0, math.floor(fill * 8))] if fill > 0 else " "
        label = f"{high:>10.4g} " if row == height else f"{low:>10.4g} " if row == 1 else " " * 11
        rows.append(label + "│" + line)
    return rows


def _resample(values: list[float], width: int) -> list[float]:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) <= width:
        return finite
    step = len(finite) / width
    return [finite[min(int(i * step), len(finite) - 1)] for i in range(width)]
