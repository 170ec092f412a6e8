"""The run page's figures of one model on one target, as inline SVG (harness/report/svg.py):
latency against accuracy with the Pareto front marked, and the latency distribution of
each variant as an ECDF.

One figure per model instead of one per target: 30 variants of five models on one axis
were unreadable, and only a model's own variants trade off against each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.report import svg

WIDTH, HEIGHT = 380.0, 250.0
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52.0, 12.0, 24.0, 40.0
FONT_SIZE = 11.0
MAX_ECDF_LINES = 8  # one colour each (svg.PALETTE); more variants: the first 8, and the note says so
#: the percentiles an ECDF is drawn through: every 5%, closer in the tails where latency differs
ECDF_POINTS = np.array([0, 0.5, 1, 2, 3.5, 5, 7.5, *range(10, 91, 5), 92.5, 95, 96.5, 98, 99, 99.5, 100], dtype=float)

MEDIAN_INDEX = int(np.flatnonzero(ECDF_POINTS == 50)[0])


def percentiles(samples: NDArray[np.floating] | Sequence[float], points: NDArray[np.floating]) -> NDArray[np.floating]:
    """numpy's default (linear) percentiles of `samples` at `points` (0..100), from one sort:
    a fifth of the time of np.percentile at hundreds of variants."""
    data = np.sort(np.asarray(samples, dtype=float))
    position = points / 100 * (data.size - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, data.size - 1)
    return data[low] + (position - low) * (data[high] - data[low])


@dataclass(frozen=True)
class TradeoffPoint:
    """One variant: p50 latency (ms) against accuracy or agreement (%)."""

    label: str
    p50: float
    y: float
    is_baseline: bool


def pareto_front(points: Sequence[TradeoffPoint]) -> list[TradeoffPoint]:
    """The points no other point beats on both axes (lower latency, higher y), fastest first."""
    front = []
    for p in points:
        dominated = any(q.p50 <= p.p50 and q.y >= p.y and (q.p50 < p.p50 or q.y > p.y) for q in points)
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: (p.p50, -p.y))


def _frame() -> tuple[float, float, float, float]:
    return MARGIN_LEFT, WIDTH - MARGIN_RIGHT, MARGIN_TOP, HEIGHT - MARGIN_BOTTOM


def _title(text: str) -> str:
    return (f'<text class="figure-title" x="{svg.number(MARGIN_LEFT)}" y="15" font-size="{FONT_SIZE + 1}" '
            f'font-weight="600">{svg.attr(text)}</text>')


def tradeoff(title: str, points: Sequence[TradeoffPoint], y_label: str) -> str:
    """p50 latency (x) against accuracy or agreement (y); the Pareto front filled and joined
    by a step line, other variants hollow, baselines square. Every point carries its name as
    a tooltip; the names that fit without overlapping are written next to it."""
    left, right, top, bottom = _frame()
    x = svg.scale([p.p50 for p in points], left, right, pad=0.08)
    y = svg.scale([p.y for p in points], bottom, top, pad=0.12, log=False, ceiling=100.5)
    body = [_title(title), *svg.axes(x, y, "p50 latency (ms)", y_label, FONT_SIZE)]
    front = pareto_front(points)
    on_front = {p.label for p in front}
    if len(front) > 1:
        path = [f"M{svg.number(x(front[0].p50))},{svg.number(y(front[0].y))}"]
        for p in front[1:]:  # a step: right to the next front point's latency, then up to its accuracy
            path.append(f"H{svg.number(x(p.p50))} V{svg.number(y(p.y))}")
        body.append(f'<path class="pareto" d="{" ".join(path)}" fill="none" stroke="#0072b2" '
                    'stroke-width="1.5" stroke-dasharray="4 2"/>')
    markers: list[svg.Box] = []
    for p in points:
        px, py = x(p.p50), y(p.y)
        fill = "#0072b2" if p.label in on_front else "#fff"
        tip = (f"{p.label}: p50 {p.p50:.3g} ms, {y_label} {p.y:.1f}"
               + (" (baseline)" if p.is_baseline else "") + (" · on the Pareto front" if p.label in on_front else ""))
        if p.is_baseline:
            shape = (f'<rect x="{svg.number(px - 4.5)}" y="{svg.number(py - 4.5)}" width="9" height="9" '
                     f'fill="{fill}" stroke="#0072b2" stroke-width="1.5">')
            end = "</rect>"
        else:
            shape = f'<circle cx="{svg.number(px)}" cy="{svg.number(py)}" r="4.5" fill="{fill}" ' \
                    'stroke="#0072b2" stroke-width="1.5">'
            end = "</circle>"
        body.append(f'<g class="point" data-label="{svg.attr(p.label)}"'
                    f'{" data-pareto" if p.label in on_front else ""}>{shape}<title>{svg.attr(tip)}</title>{end}</g>')
        markers.append(svg.Box(px - 5, py - 5, px + 5, py + 5))
    ordered = sorted(points, key=lambda p: (p.label not in on_front, not p.is_baseline, p.p50))
    area = svg.Box(left + 1, top + 1, right - 1, bottom - 1)
    spots = svg.place_labels([(x(p.p50), y(p.y), p.label) for p in ordered], area, FONT_SIZE - 1, markers)
    for spot in spots:
        if spot is not None:
            text, tx, ty, _ = spot
            body.append(f'<text class="point-label" x="{svg.number(tx)}" y="{svg.number(ty)}" '
                        f'font-size="{FONT_SIZE - 1}">{svg.attr(text)}</text>')
    return svg.svg(WIDTH, HEIGHT, body, f"{title}: latency vs {y_label}", "figure tradeoff")


def ecdf(title: str, series: Mapping[str, NDArray[np.floating] | Sequence[float]]) -> str:
    """The empirical CDF of each variant's latency samples (ms): the share of inferences at
    or below a latency. The legend is a column beside the plot, so names never overlap."""
    labels = [label for label in series if len(series[label])][:MAX_ECDF_LINES]
    quantiles = {label: percentiles(series[label], ECDF_POINTS) for label in labels}
    legend_width = min(150.0, max((svg.text_width(label, FONT_SIZE - 1) for label in labels), default=0) + 18)
    width = WIDTH + legend_width
    left, right, top, bottom = _frame()
    x = svg.scale([float(q[0]) for q in quantiles.values()] + [float(q[-1]) for q in quantiles.values()],
                  left, right, pad=0.04)
    y = svg.Scale(0.0, 1.0, bottom, top, False)
    body = [_title(title), *svg.axes(x, y, "latency per inference (ms)", "share of inferences", FONT_SIZE)]
    ys = y.many(ECDF_POINTS / 100)
    for i, label in enumerate(labels):
        colour = svg.PALETTE[i % len(svg.PALETTE)]
        points = svg.polyline_points(x.many(quantiles[label]), ys)
        median = float(quantiles[label][MEDIAN_INDEX])
        body.append(f'<polyline class="ecdf" data-label="{svg.attr(label)}" points="{points}" fill="none" '
                    f'stroke="{colour}" stroke-width="1.6"><title>{svg.attr(label)}: p50 {median:.3g} ms</title>'
                    '</polyline>')
        ly = top + 6 + i * FONT_SIZE * svg.LINE_EM
        shown = svg.fit(label, legend_width - 18, FONT_SIZE - 1)
        body.append(f'<line x1="{svg.number(right + 8)}" y1="{svg.number(ly)}" x2="{svg.number(right + 20)}" '
                    f'y2="{svg.number(ly)}" stroke="{colour}" stroke-width="2"/>'
                    f'<text class="legend" x="{svg.number(right + 23)}" y="{svg.number(ly + 3.5)}" '
                    f'font-size="{FONT_SIZE - 1}">{svg.attr(shown)}<title>{svg.attr(label)}</title></text>')
    return svg.svg(width, HEIGHT, body, f"{title}: latency distribution", "figure ecdf")

