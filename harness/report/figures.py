"""matplotlib figures, returned as base64 PNG data URIs so reports are single files: the
trend page's histories and the run page's sweep curves. The run page's per-model figures and
power panels are inline SVG (svg.py, model_figures.py, power_figures.py)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MAX_LINES = 12  # lines in one history figure (more are unreadable, and slow to draw)
DPI = 110


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
