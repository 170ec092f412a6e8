"""Power over time as small multiples: one small inline-SVG panel per variant, all on the
same power scale, with the timed load window shaded.

Twelve lines on one axis hid each other (estimated ones are flat and coincide). A panel
whose power is an estimate from CPU time is drawn grey on a hatched ground and says
"estimated" in its heading, so it cannot be read as a measurement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.report import svg

PANEL_WIDTH, PANEL_HEIGHT = 230.0, 120.0
LEFT, RIGHT, TOP, BOTTOM = 38.0, 6.0, 20.0, 30.0
FONT_SIZE = 10.0
MAX_PANELS = 24  # per target; the table holds every variant's power
MAX_POINTS = 200  # per panel: more is not visible at this size


@dataclass(frozen=True)
class PowerSeries:
    """One variant's power timeline: [[ms since the idle window began, W | None], ...]."""

    label: str
    points: Sequence[Sequence[float | None]]
    markers: Mapping[str, float]
    estimated: bool


def _thin(points: Sequence[tuple[float, float]]) -> Sequence[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS)]


def panels(series: Sequence[PowerSeries]) -> list[dict[str, object]]:
    """The first MAX_PANELS series as {"label", "estimated", "svg"}, sharing one power scale."""
    shown = series[:MAX_PANELS]
    clean = {s.label: _thin([(float(t or 0) / 1000, float(w)) for t, w, *_ in s.points if w is not None])
             for s in shown}
    watts = [w for points in clean.values() for _, w in points]
    seconds = [t for points in clean.values() for t, _ in points]
    x = svg.scale(seconds, LEFT, PANEL_WIDTH - RIGHT, pad=0.0, log=False)  # one scale for all: comparable
    y = svg.scale(watts, PANEL_HEIGHT - BOTTOM, TOP, pad=0.1, log=False, floor=0.0)
    frame = svg.axes(x, y, "s", "W", FONT_SIZE, y_title_at=2.6)
    out: list[dict[str, object]] = []
    for s in shown:
        points = clean[s.label]
        body = []
        if "load_begin" in s.markers and "load_end" in s.markers:
            x0, x1 = x(s.markers["load_begin"] / 1000), x(s.markers["load_end"] / 1000)
            body.append(f'<rect class="load-window" x="{svg.number(x0)}" y="{svg.number(TOP)}" '
                        f'width="{svg.number(max(0.0, x1 - x0))}" height="{svg.number(PANEL_HEIGHT - BOTTOM - TOP)}" '
                        'fill="#fbe3c8" opacity="0.7"><title>timed load window</title></rect>')
        body += frame
        line = svg.polyline_points(x.many(np.array([t for t, _ in points])), y.many(np.array([w for _, w in points])))
        colour, dash = ("#777", ' stroke-dasharray="3 2"') if s.estimated else ("#0072b2", "")
        body.append(f'<polyline class="power-line" points="{line}" fill="none" stroke="{colour}" '
                    f'stroke-width="1.4"{dash}/>')
        heading = svg.fit(s.label, PANEL_WIDTH - 8 - (svg.text_width(" · estimated", FONT_SIZE) if s.estimated else 0),
                          FONT_SIZE)
        body.append(f'<text class="panel-title" x="4" y="12" font-size="{FONT_SIZE}" font-weight="600">'
                    f'{svg.attr(heading)}{" · estimated" if s.estimated else ""}<title>{svg.attr(s.label)}</title>'
                    '</text>')
        title = f"power of {s.label}" + (" (estimated from CPU time, not measured)" if s.estimated else "")
        out.append({"label": s.label, "estimated": s.estimated,
                    "svg": svg.svg(PANEL_WIDTH, PANEL_HEIGHT, body, title,
                                   "figure power" + (" estimated" if s.estimated else ""))})
    return out

