"""matplotlib figures, returned as base64 PNG data URIs so reports are single files."""

from __future__ import annotations

import base64
import io
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MAX_POINTS_PER_SERIES = 20_000  # plotting more adds nothing visible, only time


def _data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _thinned(values: Sequence[float]) -> Sequence[float]:
    if len(values) <= MAX_POINTS_PER_SERIES:
        return values
    step = len(values) / MAX_POINTS_PER_SERIES
    return [values[int(i * step)] for i in range(MAX_POINTS_PER_SERIES)]


def latency_distribution(target: str, series_ms: Mapping[str, Sequence[float]]) -> str:
    """Horizontal box plots (with the individual samples' spread) per variant on one target."""
    labels = list(series_ms)
    data = [_thinned(series_ms[label]) for label in labels]
    height = 1.2 + 0.55 * len(labels)
    figure, axis = plt.subplots(figsize=(8.0, height))
    axis.boxplot(data, orientation="horizontal", tick_labels=labels, showfliers=True, whis=(1, 99),
                 flierprops={"markersize": 2, "alpha": 0.4})
    lows = [min(d) for d in data if len(d)]
    highs = [max(d) for d in data if len(d)]
    if lows and min(lows) > 0 and max(highs) / min(lows) > 20:
        axis.set_xscale("log")
    axis.set_xlabel("latency per inference (ms); whiskers p1-p99")
    axis.set_title(f"{target}: latency distribution")
    axis.grid(axis="x", alpha=0.3)
    return _data_uri(figure)


def power_timeline(target: str, series: Mapping[str, tuple[Sequence[Sequence[float]], Mapping[str, float]]],
                   estimated: bool) -> str:
    """Board power over time per variant, with the idle and load windows shaded."""
    figure, axis = plt.subplots(figsize=(8.0, 3.2))
    for label, (points, markers) in series.items():
        xs = [p[0] / 1000 for p in points if p[1] is not None]
        ys = [p[1] for p in points if p[1] is not None]
        line, = axis.plot(xs, ys, label=label, linewidth=1.2)
        if "load_begin" in markers and "load_end" in markers:
            axis.axvspan(markers["load_begin"] / 1000, markers["load_end"] / 1000, color=line.get_color(), alpha=0.06)
    axis.set_xlabel("seconds since the idle window began (shaded: timed load window)")
    axis.set_ylabel("power (W)" + (" — ESTIMATED" if estimated else ""))
    axis.set_title(f"{target}: power timeline" + (" (estimated from CPU time, not measured)" if estimated else ""))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper right")
    return _data_uri(figure)
