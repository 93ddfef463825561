"""Small charts as inline SVG, drawn on the server: the console needs no JavaScript.

Each chart is an ``<svg role="img">`` with a ``<title>`` that says in words what it
shows (screen readers read that, not the shapes), colours from classes in
style.css (no inline styles: the pages' Content-Security-Policy allows none), and a
``viewBox`` so it scales to the width it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

BAR_WIDTH = 4
BAR_GAP = 1
BARS_HEIGHT = 24


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a line chart: its name (the legend) and one value per point."""

    name: str
    values: Sequence[int | None]  # None: no value at that point (the line breaks)


def bars(values: Sequence[int], label: str) -> Markup:
    """A bar per value, scaled to the largest (a day with nothing still shows a baseline)."""
    top = max(values, default=0) or 1
    width = len(values) * (BAR_WIDTH + BAR_GAP)
    shapes = []
    for n, value in enumerate(values):
        height = max(1, round(value / top * BARS_HEIGHT)) if value else 1
        kind = "bar" if value else "bar bar-none"
        x, y = n * (BAR_WIDTH + BAR_GAP), BARS_HEIGHT - height
        shapes.append(
            f'<rect class="{kind}" x="{x}" y="{y}" width="{BAR_WIDTH}" height="{height}"/>'
        )
    return _svg("chart-bars", width, BARS_HEIGHT, label, "".join(shapes))


def lines(series: Sequence[Series], points: Sequence[str], label: str) -> Markup:
    """A line per series over ``points`` (their labels, oldest first), with the first and
    the last point's labels under the axis and the highest value beside it."""
    width, height, left, bottom = 320, 120, 36, 18
    top_value = max((v for s in series for v in s.values if v is not None), default=0) or 1
    step = (width - left - 6) / max(len(points) - 1, 1)
    plot = height - bottom - 6
    shapes = [
        f'<line class="axis" x1="{left}" y1="{6 + plot}" x2="{width - 4}" y2="{6 + plot}"/>',
        f'<text class="tick" x="{left - 4}" y="12" text-anchor="end">{top_value}</text>',
        f'<text class="tick" x="{left - 4}" y="{6 + plot}" text-anchor="end">0</text>',
    ]
    if points:
        shapes.append(
            f'<text class="tick" x="{left}" y="{height - 4}">{escape(points[0])}</text>'
            f'<text class="tick" x="{width - 4}" y="{height - 4}" text-anchor="end">'
            f"{escape(points[-1])}</text>"
        )
    for n, one in enumerate(series):
        coords = [
            f"{left + i * step:.1f},{6 + plot - value / top_value * plot:.1f}"
            for i, value in enumerate(one.values)
            if value is not None
        ]
        if len(coords) == 1:
            x, y = coords[0].split(",")
            shapes.append(f'<circle class="line line-{n % 4}" cx="{x}" cy="{y}" r="2.5"/>')
        elif coords:
            shapes.append(f'<polyline class="line line-{n % 4}" points="{" ".join(coords)}"/>')
    return _svg("chart-lines", width, height, label, "".join(shapes))


def _svg(kind: str, width: int, height: int, label: str, body: str) -> Markup:
    return Markup(
        f'<svg class="chart {kind}" role="img" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" preserveAspectRatio="xMinYMid meet">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )
