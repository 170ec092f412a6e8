"""matplotlib figures, returned as base64 PNG data URIs so reports are single files."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from numpy.typing import NDArray

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MAX_POINTS_PER_SERIES = 20_000  # plotting more adds nothing visible, only time
MAX_SERIES = 30  # variants drawn in one distribution figure; the tables hold all of them
MAX_LINES = 12  # lines in one timeline or history figure (more are unreadable, and slow to draw)
MAX_LABELS = 20  # points annotated with their name in a scatter


DPI = 110

#: Latency samples of one variant, in ms: a list, or the array the store's samples became.
Samples = Sequence[float] | NDArray[np.floating[Any]]


@dataclass(frozen=True)
class TradeoffPoint:
    """One variant in the trade-off scatter: p50 latency against y (agreement % or size MiB)."""

    label: str
    p50: float
    y: float
    size_mib: float | None
    is_baseline: bool


def _margins(figure, *, left_chars: int = 6, bottom_lines: float = 2.2, top_lines: float = 1.8) -> None:
    """Fixed margins sized from the longest tick label, instead of bbox_inches="tight" (which
    draws every figure twice: a third of the report's rendering time at 10,000 measurements)."""
    width, height = figure.get_size_inches()
    char_in, line_in = 7 * 0.6 / 72 * 1.15, 11 / 72 * 1.25
    left = min(0.5, (left_chars * char_in + 2.2 * line_in) / width)
    figure.subplots_adjust(left=left, right=1 - 0.25 / width, bottom=min(0.45, bottom_lines * line_in / height),
                           top=1 - min(0.3, top_lines * line_in / height))


def _data_uri(figure) -> str:
    buffer = io.BytesIO()
    # compress_level 1: a third of the time of the default for a few % more bytes
    figure.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _thinned(values: Samples) -> Samples:
    if len(values) <= MAX_POINTS_PER_SERIES:
        return values
    step = len(values) / MAX_POINTS_PER_SERIES
    return [values[int(i * step)] for i in range(MAX_POINTS_PER_SERIES)]


def latency_distribution(target: str, series_ms: Mapping[str, Samples]) -> str:
    """Horizontal box plots (with the individual samples' spread) per variant on one target."""
    labels = [label for label in series_ms if len(series_ms[label])][:MAX_SERIES]
    data = [np.asarray(_thinned(series_ms[label]), dtype=float) for label in labels]
    height = 1.2 + 0.55 * len(labels)
    figure, axis = plt.subplots(figsize=(8.0, height))
    stats = []
    # the statistics with numpy, drawn by bxp (2x faster than boxplot)
    for label, values in zip(labels, data, strict=True):
        p1, q1, median, q3, p99 = np.percentile(values, [1, 25, 50, 75, 99])
        stats.append({"label": label, "whislo": p1, "q1": q1, "med": median, "q3": q3, "whishi": p99,
                      "fliers": values[(values < p1) | (values > p99)]})
    axis.bxp(stats, orientation="horizontal", showfliers=True, flierprops={"markersize": 2, "alpha": 0.4})
    lows = [float(d.min()) for d in data]
    highs = [float(d.max()) for d in data]
    if lows and min(lows) > 0 and max(highs) / min(lows) > 20:
        axis.set_xscale("log")
    axis.set_xlabel("latency per inference (ms); whiskers p1-p99")
    axis.set_title(f"{target}: latency distribution")
    axis.grid(axis="x", alpha=0.3)
    axis.tick_params(axis="y", labelsize=8)
    _margins(figure, left_chars=int(max((len(label) for label in labels), default=4) * 0.85) + 2)
    return _data_uri(figure)


def power_timeline(target: str, series: Mapping[str, tuple[Sequence[Sequence[float]], Mapping[str, float]]],
                   estimated: bool) -> str:
    """Board power over time per variant, with the idle and load windows shaded."""
    figure, axis = plt.subplots(figsize=(8.0, 3.2))
    shown = list(series)[:MAX_LINES]
    for label in shown:
        points, markers = series[label]
        xs = [p[0] / 1000 for p in points if p[1] is not None]
        ys = [p[1] for p in points if p[1] is not None]
        line, = axis.plot(xs, ys, label=label, linewidth=1.2)
        if "load_begin" in markers and "load_end" in markers:
            axis.axvspan(markers["load_begin"] / 1000, markers["load_end"] / 1000, color=line.get_color(), alpha=0.06)
    axis.set_xlabel("seconds since the idle window began (shaded: timed load window)")
    axis.set_ylabel("power (W)" + (" — ESTIMATED" if estimated else ""))
    more = f" (first {MAX_LINES} of {len(series)} variants)" if len(series) > MAX_LINES else ""
    axis.set_title(f"{target}: power timeline" + (" (estimated from CPU time, not measured)" if estimated else "")
                   + more)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper right")
    _margins(figure, left_chars=5)
    return _data_uri(figure)


def tradeoff(target: str, points: Sequence[TradeoffPoint], y_kind: str) -> str:
    """Latency (x, p50) against agreement with the baseline or model size (y); marker area
    proportional to the model's file size. Baselines are drawn as squares."""
    figure, axis = plt.subplots(figsize=(8.0, 4.2))
    sizes = [float(p.size_mib or 0) for p in points]
    biggest = max(sizes) if sizes and max(sizes) > 0 else 1.0
    for is_baseline, marker in ((True, "s"), (False, "o")):
        group = [p for p in points if p.is_baseline == is_baseline]
        if group:
            axis.scatter([p.p50 for p in group], [p.y for p in group],
                         s=[30 + 600 * (float(p.size_mib or 0) / biggest) for p in group], alpha=0.55,
                         marker=marker, edgecolors="black", linewidths=0.6)
    for point in points[:MAX_LABELS]:
        axis.annotate(point.label, (point.p50, point.y), fontsize=7, xytext=(5, 4),
                      textcoords="offset points")
    xs = [p.p50 for p in points]
    if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
        axis.set_xscale("log")
    axis.margins(x=0.12, y=0.1)  # room for the largest markers and their names
    axis.set_xlabel("p50 latency per inference (ms)")
    if y_kind == "agreement":
        axis.set_ylabel("top-1 agreement with the baseline model (%)")
    else:
        axis.set_ylabel("model size on disk (MiB)")
    axis.set_title(f"{target}: latency vs {'accuracy' if y_kind == 'agreement' else 'size'} "
                   "(marker area = model file size; squares = baselines)", fontsize=10)
    axis.grid(alpha=0.3)
    _margins(figure, left_chars=6)
    return _data_uri(figure)


def history(title: str, ylabel: str, runs: Sequence[str], series: Mapping[str, Sequence[float | None]],
            marks: Mapping[str, Sequence[tuple[int, str]]]) -> str:
    """A metric across runs (x: run index, oldest first), one line per variant; detected steps
    marked with a triangle at the run where they appear (up: worse for latency)."""
    figure, axis = plt.subplots(figsize=(9.0, 3.6))
    positions = list(range(len(runs)))
    for label in [name for name in series if any(v is not None for v in series[name])][:MAX_LINES]:
        values = series[label]
        xs = [i for i, v in zip(positions, values, strict=False) if v is not None]  # values past the runs: not drawn
        ys = [v for v in values if v is not None]
        line, = axis.plot(xs, ys, marker=".", linewidth=1.2, label=label)
        for index, kind in marks.get(label, ()):
            value = values[index]
            if value is not None:
                axis.scatter([index], [value], marker="^" if kind == "worse" else "v", s=120,
                             color="#b3261e" if kind == "worse" else "#13723a", zorder=5)
    step = max(1, len(runs) // 12)
    axis.set_xticks(positions[::step])
    axis.set_xticklabels([runs[i] for i in positions[::step]], rotation=30, ha="right", fontsize=7)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    if series:
        axis.legend(fontsize=7, loc="best", ncol=2)
    _margins(figure, left_chars=6, bottom_lines=4.6)
    return _data_uri(figure)


def sweep_curve(title: str, parameter: str, labels: Sequence[str], latency_ms: Sequence[float | None],
                throughput: Sequence[float | None], budget_ms: float | None, chosen: str | None,
                statistic: str) -> str:
    """Latency (the budget's statistic) and throughput against a swept parameter."""
    figure, left = plt.subplots(figsize=(6.4, 3.0))
    xs = list(range(len(labels)))
    lat = [(x, y) for x, y in zip(xs, latency_ms, strict=False) if y is not None]
    left.plot([x for x, _ in lat], [y for _, y in lat], marker="o", color="#1f5fa8",
              label=f"{statistic} latency (ms)")
    if budget_ms is not None:
        left.axhline(budget_ms, color="#b3261e", linestyle="--", linewidth=1, label=f"budget {budget_ms:.3g} ms")
    if chosen in labels:
        x = labels.index(chosen)
        y = latency_ms[x]
        if y is not None:
            left.scatter([x], [y], s=140, facecolors="none", edgecolors="#13723a", linewidths=2,
                         label=f"cheapest meeting every budget: {chosen}", zorder=5)
    left.set_xticks(xs, labels)
    left.set_xlabel(parameter)
    left.set_ylabel("latency (ms)")
    right = left.twinx()
    thr = [(x, y) for x, y in zip(xs, throughput, strict=False) if y is not None]
    right.plot([x for x, _ in thr], [y for _, y in thr], marker="s", color="#8a5a00", alpha=0.7,
               label="throughput (/s)")
    right.set_ylabel("throughput (inputs/s)")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    names = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles, names, fontsize=7, loc="best")
    left.set_title(title, fontsize=10)
    left.grid(alpha=0.3)
    return _data_uri(figure)
