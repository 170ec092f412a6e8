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
