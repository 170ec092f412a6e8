"""A small SVG chart kit for the run page's figures: scales (linear or log, with ticks),
axes, and text labels placed so that they never overlap.

Why not matplotlib here: the run page draws a few figures per model, hundreds at lab scale;
matplotlib costs about 0.2 s a figure (PNG encoding included), these cost well under a
millisecond, stay sharp at any zoom, keep their text selectable, and a browser test can
measure every label's real extent (`getBBox`). matplotlib still draws the few figures of
the trend and the sweeps (harness/report/figures.py).

Text extents are estimated from the character count (`text_width`), deliberately on the
wide side of the fonts the page asks for, so labels placed apart here are apart on screen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
from numpy.typing import NDArray

FONT = 'font-family="DejaVu Sans, Verdana, system-ui, sans-serif"'
CHAR_EM = 0.64  # average advance of a character, in em: DejaVu Sans' digits are 0.636 em
LINE_EM = 1.25
LOG_RATIO = 20.0  # a scale goes logarithmic when its values span more than this factor

#: Okabe-Ito: distinguishable for the colour-blind, and in greyscale print by their order.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#999999")


def text_width(text: str, size: float) -> float:
    """The estimated width in px of `text` at font size `size` px (see CHAR_EM)."""
    return len(text) * size * CHAR_EM


def fit(text: str, width: float, size: float) -> str:
    """`text`, cut with an ellipsis to fit `width` px at `size` (keep the full text in a tooltip)."""
    if text_width(text, size) <= width:
        return text
    keep = max(1, int(width / (size * CHAR_EM)) - 1)
    return text[:keep] + "…"


def attr(value: object) -> str:
    """`value` escaped for an attribute or text node."""
    return escape(str(value), quote=True)


def number(value: float) -> str:
    """A coordinate with one decimal: the page's pixels need no more."""
    return f"{value:.1f}"


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in px (x0 < x1, y0 < y1: y grows downwards)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box, gap: float = 1.0) -> bool:
        return not (self.x1 + gap <= other.x0 or other.x1 + gap <= self.x0
                    or self.y1 + gap <= other.y0 or other.y1 + gap <= self.y0)

    def inside(self, outer: Box) -> bool:
        return self.x0 >= outer.x0 and self.x1 <= outer.x1 and self.y0 >= outer.y0 and self.y1 <= outer.y1


@dataclass(frozen=True)
class Scale:
    """Data values [low, high] onto pixels [start, end] (end < start for a y axis)."""

    low: float
    high: float
    start: float
    end: float
    log: bool

    def __call__(self, value: float) -> float:
        if self.log:
            a, b, v = math.log10(self.low), math.log10(self.high), math.log10(max(value, self.low))
        else:
            a, b, v = self.low, self.high, value
        share = 0.5 if b == a else (v - a) / (b - a)
        return self.start + share * (self.end - self.start)

    def many(self, values: NDArray[np.floating]) -> list[float]:
        """Pixels of many values at once, rounded to 0.1 px (what `number` writes)."""
        v = np.asarray(values, dtype=float)
        if self.log:
            a, b = math.log10(self.low), math.log10(self.high)
            v = np.log10(np.maximum(v, self.low))
        else:
            a, b = self.low, self.high
        share = np.full_like(v, 0.5) if b == a else (v - a) / (b - a)
        return np.round(self.start + share * (self.end - self.start), 1).tolist()

    def ticks(self, most: int = 6) -> list[tuple[float, str]]:
        """(value, label) of the ticks inside the range: decades (with 2 and 5 when few)
        on a log scale, 1-2-5 steps on a linear one."""
        if self.log:
            return _log_ticks(self.low, self.high, most)
        return _linear_ticks(self.low, self.high, most)


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.0e}"
    return f"{value:g}"


def _linear_ticks(low: float, high: float, most: int) -> list[tuple[float, str]]:
    span = high - low
    if span <= 0:
        return [(low, _label(low))]
    raw = span / max(1, most - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append((value, _label(round(value, 12))))
        value += step
    return ticks


def _log_ticks(low: float, high: float, most: int) -> list[tuple[float, str]]:
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for multiples in ((1,), (1, 2, 5), (1, 2, 3, 5)):
        ticks = [m * 10.0 ** d for d in decades for m in multiples if low <= m * 10.0 ** d <= high]
        if len(ticks) >= 3 or multiples == (1, 2, 3, 5):
            break
    if len(ticks) > most:  # a very wide range: every other decade
        ticks = ticks[::math.ceil(len(ticks) / most)]
    return [(t, _label(t)) for t in ticks]


def scale(values: Iterable[float], start: float, end: float, *, pad: float = 0.06,
          log: bool | None = None, floor: float | None = None, ceiling: float | None = None) -> Scale:
    """A scale covering `values` with `pad` of the span either side; logarithmic when `log`
    says so, or (None) when the positive values span more than LOG_RATIO."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        finite = [0.0, 1.0]
    low, high = min(finite), max(finite)
    use_log = (low > 0 and high / low > LOG_RATIO) if log is None else (log and low > 0)
    if use_log:
        factor = (high / low) ** pad if high > low else 1.5
        low, high = low / factor, high * factor
    else:
        span = high - low or abs(high) * 0.1 or 1.0
        low, high = low - span * pad, high + span * pad
        if floor is not None:
            low = max(low, floor)
        if ceiling is not None:
            high = min(high, ceiling)
    return Scale(low, high, start, end, use_log)


def axes(x: Scale, y: Scale, x_label: str, y_label: str, size: float = 11, y_title_at: float = 3.4) -> list[str]:
    """The frame, grid, ticks and axis titles; a log axis says "(log scale)" in its title.
    The y title's baseline sits `y_title_at` font sizes left of the frame."""
    left, right, top, bottom = x.start, x.end, y.end, y.start
    parts = [f'<rect x="{number(left)}" y="{number(top)}" width="{number(right - left)}" '
             f'height="{number(bottom - top)}" fill="none" stroke="#99a"/>']
    for value, label in x.ticks():
        px = x(value)
        parts.append(f'<line x1="{number(px)}" y1="{number(top)}" x2="{number(px)}" y2="{number(bottom)}" '
                     'stroke="#e3e6ea"/>')
        parts.append(f'<text class="tick" x="{number(px)}" y="{number(bottom + size + 3)}" '
                     f'text-anchor="middle" font-size="{size - 1}">{attr(label)}</text>')
    for value, label in y.ticks(5):
        py = y(value)
        parts.append(f'<line x1="{number(left)}" y1="{number(py)}" x2="{number(right)}" y2="{number(py)}" '
                     'stroke="#e3e6ea"/>')
        parts.append(f'<text class="tick" x="{number(left - 4)}" y="{number(py + size / 3)}" '
                     f'text-anchor="end" font-size="{size - 1}">{attr(label)}</text>')
    x_title = x_label + (" (log scale)" if x.log else "")
    y_title = y_label + (" (log scale)" if y.log else "")
    parts.append(f'<text class="axis-title" x="{number((left + right) / 2)}" y="{number(bottom + 2 * size + 8)}" '
                 f'text-anchor="middle" font-size="{size}">{attr(x_title)}</text>')
    parts.append(f'<text class="axis-title" transform="rotate(-90)" x="{number(-(top + bottom) / 2)}" '
                 f'y="{number(left - y_title_at * size)}" text-anchor="middle" font-size="{size}">'
                 f'{attr(y_title)}</text>')
    return parts


# candidate positions of a label around its point, in order of preference: (dx, dy) of the
# label's left baseline corner relative to the point, as multiples of (label width, size)
_SPOTS = ((0.0, -0.35, 6, 0), (0.0, 1.05, 6, 0), (-1.0, -0.35, -6, 0), (-1.0, 1.05, -6, 0),
          (-0.5, -0.9, 0, -4), (-0.5, 1.7, 0, 4))


def place_labels(anchors: Sequence[tuple[float, float, str]], area: Box, size: float,
                 taken: Sequence[Box] = ()) -> list[tuple[str, float, float, Box] | None]:
    """For each (x, y, text), in priority order, the first spot around the point where the
    label fits inside `area` and overlaps no label placed before it nor a box in `taken`
    (markers): (text, x, y of its baseline start, its box), or None where none fits (the
    label is left out; the point keeps its name as a tooltip)."""
    placed: list[Box] = list(taken)
    out: list[tuple[str, float, float, Box] | None] = []
    for px, py, text in anchors:
        width = text_width(text, size)
        spot = None
        for fx, fy, ox, oy in _SPOTS:
            x0 = px + fx * width + ox
            baseline = py + fy * size + oy
            box = Box(x0, baseline - size, x0 + width, baseline + 0.25 * size)
            if box.inside(area) and not any(box.overlaps(other) for other in placed):
                spot = (text, x0, baseline, box)
                break
        if spot is not None:
            placed.append(spot[3])
        out.append(spot)
    return out


def polyline_points(xs: Sequence[float], ys: Sequence[float]) -> str:
    """An SVG `points` attribute from pixel coordinates (rounded already: Scale.many)."""
    return " ".join(f"{x},{y}" for x, y in zip(xs, ys, strict=True))


def svg(width: float, height: float, body: Sequence[str], title: str, css_class: str = "figure") -> str:
    """A complete inline <svg> with an accessible title."""
    return (f'<svg class="{css_class}" viewBox="0 0 {number(width)} {number(height)}" width="{number(width)}" '
            f'height="{number(height)}" role="img" aria-label="{attr(title)}" {FONT} '
            f'xmlns="http://www.w3.org/2000/svg"><title>{attr(title)}</title>{"".join(body)}</svg>')
