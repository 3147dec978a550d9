"""sweep.png: the metric against each swept parameter (one dot per trial), and the best trials' learning
curves, drawn with Pillow (no plotting library needed on the cluster)."""

from __future__ import annotations

import io
import math
from typing import Any

PANEL_W, PANEL_H, MARGIN = 360, 240, 44
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
BEST_CURVES = 5


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _scale(values: list[float], log: bool) -> tuple[float, float]:
    data = [math.log10(v) for v in values] if log else values
    low, high = min(data), max(data)
    if high - low < 1e-12:
        low, high = low - 1, high + 1
    return low, high


def _panel(
    draw: Any, box: tuple[int, int], title: str, x_label: str, y_label: str
) -> tuple[int, int, int, int]:
    x0, y0 = box
    left, top = x0 + MARGIN, y0 + 24
    right, bottom = x0 + PANEL_W - 12, y0 + PANEL_H - 30
    draw.rectangle([left, top, right, bottom], outline=(120, 120, 120))
    draw.text((x0 + 8, y0 + 6), title, fill=(0, 0, 0))
    draw.text((left, bottom + 8), x_label, fill=(60, 60, 60))
    draw.text((x0 + 4, top), y_label[:7], fill=(60, 60, 60))
    return left, top, right, bottom


def render_report(metric: str, mode: str, paths: list[str], rows: list[dict[str, Any]]) -> bytes:
    """PNG bytes. `rows`: trials ranked best first, each with `point`, `metric` and `history`."""
    from PIL import Image, ImageDraw

    panels = len(paths) + 1
    columns = min(3, panels)
    lines = math.ceil(panels / columns)
    image = Image.new("RGB", (columns * PANEL_W, lines * PANEL_H + 20), "white")
    draw = ImageDraw.Draw(image)
    scored = [row for row in rows if _numeric(row.get("metric")) is not None]
    values = [float(row["metric"]) for row in scored]
    y_low, y_high = _scale(values, False) if values else (0.0, 1.0)
    for index, path in enumerate(paths):
        box = ((index % columns) * PANEL_W, (index // columns) * PANEL_H)
        left, top, right, bottom = _panel(draw, box, f"{metric} by {path}", path.split(".")[-1], metric)
        xs = [row["point"].get(path) for row in scored]
        numeric = [_numeric(x) for x in xs]
        if xs and all(n is not None for n in numeric):
            positive = all(n > 0 for n in numeric)  # type: ignore[operator]
            log = positive and max(numeric) / min(numeric) > 100  # type: ignore[type-var,operator]
            x_low, x_high = _scale(numeric, log)  # type: ignore[arg-type]
            place = [((math.log10(n) if log else n) - x_low) / (x_high - x_low) for n in numeric]  # type: ignore[arg-type]
            draw.text(
                (left, bottom + 18),
                f"{min(numeric):.3g} .. {max(numeric):.3g}{' (log)' if log else ''}",
                fill=(90, 90, 90),
            )  # type: ignore[type-var]
        else:
            labels = sorted({repr(x) for x in xs})
            place = [(labels.index(repr(x)) + 0.5) / max(1, len(labels)) for x in xs]
            draw.text((left, bottom + 18), " | ".join(labels)[:56], fill=(90, 90, 90))
        for rank, (row, px) in enumerate(zip(scored, place, strict=True)):
            x = left + 6 + px * (right - left - 12)
            y = bottom - 6 - (float(row["metric"]) - y_low) / (y_high - y_low) * (bottom - top - 12)
            colour = COLOURS[0] if rank else (214, 39, 40)
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    # the best trials' learning curves
    index = len(paths)
    box = ((index % columns) * PANEL_W, (index // columns) * PANEL_H)
    left, top, right, bottom = _panel(draw, box, f"best trials: {metric} by epoch", "epoch", metric)
    curves = []
    for row in scored[:BEST_CURVES]:
        points = [
            (int(h.get("epoch") or i + 1), float(h[metric]))
            for i, h in enumerate(row.get("history") or [])
            if _numeric(h.get(metric)) is not None
        ]
        if points:
            curves.append((row, points))
    all_points = [p for _, points in curves for p in points]
    if all_points:
        e_high = max(e for e, _ in all_points) or 1
        c_low, c_high = _scale([v for _, v in all_points], False)
        for rank, (row, points) in enumerate(curves):
            colour = COLOURS[rank % len(COLOURS)]
            xy = [
                (
                    left + 6 + (e / e_high) * (right - left - 12),
                    bottom - 6 - (v - c_low) / (c_high - c_low) * (bottom - top - 12),
                )
                for e, v in points
            ]
            if len(xy) > 1:
                draw.line(xy, fill=colour, width=2)
            else:
                draw.ellipse([xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2], fill=colour)
            draw.text((right - 70, top + 4 + 12 * rank), f"trial {row['number']}", fill=colour)
    best = f"best: trial {scored[0]['number']}, {metric}={scored[0]['metric']:.4g} ({mode})" if scored else ""
    draw.text((8, lines * PANEL_H + 4), f"{len(rows)} trials. {best}", fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
