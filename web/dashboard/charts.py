"""Space saved over time as plain SVG geometry, drawn by the server: no chart library,
no script, nothing from a CDN, and it prints."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from web.dashboard.filters import human_bytes

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 64, 12, 28


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[dict[str, Any]] = field(default_factory=list)
    line: str = ""
    left_ticks: list[tuple[float, str]] = field(default_factory=list)
    right_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    plot: tuple[int, int, int, int] = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM)
    empty: bool = True


def nice_max(value: float) -> float:
    """A round upper bound for an axis (1, 2, 2.5 or 5 times a power of 1024 or 10)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        bound = step * 10 ** exponent
        if bound >= value:
            return bound
    return 10 ** (exponent + 1)


def saved_chart(points: list[dict[str, Any]], bucket: str) -> Chart:
    """Bars: space saved in each bucket. Line: the running total (right axis)."""
    chart = Chart()
    if not points:
        return chart
    x0, y0, x1, y1 = chart.plot
    plot_w, plot_h = x1 - x0, y1 - y0
    bar_max = nice_max(max((max(p["saved_bytes"], 0) for p in points), default=0))
    cum_values = [p["cumulative_saved_bytes"] for p in points]
    cum_min = min(0, min(cum_values))
    cum_max = nice_max(max(cum_values)) if max(cum_values) > 0 else 1.0
    slot = plot_w / len(points)
    gap = min(2.0, slot * 0.2)
    line = []
    for index, point in enumerate(points):
        saved = max(point["saved_bytes"], 0)
        height = plot_h * saved / bar_max
        x = x0 + index * slot
        chart.bars.append({"x": round(x + gap / 2, 2), "y": round(y1 - height, 2), "w": round(max(slot - gap, 0.5), 2),
                           "h": round(height, 2),
                           "title": f"{point['start']}: {human_bytes(point['saved_bytes'])} saved in "
                                    f"{point['files']} files"})
        cy = y1 - plot_h * (point["cumulative_saved_bytes"] - cum_min) / (cum_max - cum_min)
        line.append(f"{round(x + slot / 2, 2)},{round(cy, 2)}")
        if point["files"]:
            chart.empty = False
    chart.line = " ".join(line)
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        y = round(y1 - plot_h * fraction, 2)
        chart.left_ticks.append((y, human_bytes(bar_max * fraction)))
        chart.right_ticks.append((y, human_bytes(cum_min + (cum_max - cum_min) * fraction)))
    every = max(1, math.ceil(len(points) / 8))
    for index in range(0, len(points), every):
        start = points[index]["start"]
        label = start[:7] if bucket == "month" else start[5:]
        chart.x_labels.append((round(x0 + index * slot + slot / 2, 2), label))
    return chart
