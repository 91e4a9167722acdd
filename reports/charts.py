"""Matplotlib charts in one style, returned as base64 PNG data URIs for a self-contained report.

PNG (not inline SVG) keeps the file small when a chart has thousands of points, and every chart is an
<img> whose loading a browser test can check. Labels are drawn as plain text (no mathtext), so a
request name holding `$` cannot break a chart.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # headless: no display, no GUI toolkit

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

ELAPSED_LABEL = "Elapsed time since run start (s)"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
STAGE_COLORS = ("#e8eef7", "#f7f1e3")
STYLE = {
    "figure.figsize": (10.0, 3.8),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "text.parse_math": False,
    "svg.fonttype": "none",
}


@dataclass(frozen=True)
class Chart:
    key: str  # HTML id
    title: str
    uri: str  # data:image/png;base64,...
    alt: str


@dataclass(frozen=True)
class Stage:
    name: str
    start_s: float  # elapsed from the run origin
    end_s: float


@contextmanager
def figure(nrows: int = 1, height: float | None = None) -> Iterator[tuple[Figure, list[Axes]]]:
    with plt.rc_context(STYLE):
        width, default_height = STYLE["figure.figsize"]
        fig, axes = plt.subplots(nrows, 1, figsize=(width, height or default_height * nrows), squeeze=False)
        try:
            yield fig, list(axes[:, 0])
        finally:
            plt.close(fig)


def to_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def legend_below(ax: Axes, handles: list, labels: list) -> None:
    """Legend under the x axis label: it never hides a line, whatever the data does."""
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=min(len(labels), 6))


def shade_stages(ax: Axes, stages: Sequence[Stage]) -> None:
    """Shade each load-shape stage and name it at the top, so every time chart shows the shape."""
    for index, stage in enumerate(stages):
        ax.axvspan(stage.start_s, stage.end_s, color=STAGE_COLORS[index % 2], zorder=0, lw=0)
        ax.text(
            (stage.start_s + stage.end_s) / 2,
            1.0,
            stage.name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=8,
            color="#555555",
            clip_on=False,
        )


Series = tuple[str, Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]

# Fewer finite values than this make no line worth drawing: they are shown as points.
MIN_LINE_POINTS = 3


def line_style(ys: Sequence[float] | np.ndarray) -> dict[str, object]:
    """How to draw one series: a line when its values are dense, points when it has gaps (a bin
    with no answers has no percentile), since a line would break into segments and hide lone values."""
    finite = np.isfinite(np.asarray(ys, dtype=float))
    present = np.flatnonzero(finite)
    if present.size == 0:
        return {}
    gapped = not finite[present[0] : present[-1] + 1].all()
    if gapped or present.size < MIN_LINE_POINTS:
        return {"marker": "o", "markersize": 3.5, "linestyle": "none"}
    return {}


def time_chart(
    key: str,
    title: str,
    ylabel: str,
    lines: Sequence[Series],
    stages: Sequence[Stage] = (),
    right: Series | None = None,
    right_label: str = "",
    log_y: bool = False,
) -> Chart:
    """Lines over elapsed time, stages shaded, an optional second y axis on the right."""
    with figure() as (fig, (ax,)):
        shade_stages(ax, stages)
        for label, xs, ys in lines:
            ax.plot(xs, ys, label=label, **line_style(ys))
        ax.set_xlabel(ELAPSED_LABEL)
        ax.set_ylabel(ylabel)
        ax.set_title(title, pad=16 if stages else 6)
        if log_y:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.6g}"))
        else:
            ax.set_ylim(bottom=0)
        handles, labels = ax.get_legend_handles_labels()
        if right is not None:
            twin = ax.twinx()
            twin.grid(False)
            twin.spines["right"].set_visible(True)
            label, xs, ys = right
            (line,) = twin.plot(xs, ys, color="#555555", linestyle="--", label=label)
            twin.set_ylabel(right_label)
            twin.set_ylim(bottom=0)
            handles.append(line)
            labels.append(label)
        if handles:
            legend_below(ax, handles, labels)
        return Chart(key, title, to_uri(fig), f"{title}: {ylabel} against elapsed time")


def stacked_time_chart(
    key: str,
    title: str,
    ylabel: str,
    xs: np.ndarray,
    layers: dict[str, np.ndarray],
    stages: Sequence[Stage] = (),
) -> Chart:
    with figure() as (fig, (ax,)):
        shade_stages(ax, stages)
        ax.stackplot(xs, *layers.values(), labels=list(layers), alpha=0.85)
        ax.set_xlabel(ELAPSED_LABEL)
        ax.set_ylabel(ylabel)
        ax.set_title(title, pad=16 if stages else 6)
        ax.set_ylim(bottom=0)
        legend_below(ax, *ax.get_legend_handles_labels())
        return Chart(key, title, to_uri(fig), f"{title}: {ylabel} against elapsed time")


def scatter_knee(
    key: str,
    title: str,
    points_x: np.ndarray,
    points_y: np.ndarray,
    curve_x: np.ndarray,
    curve_y: np.ndarray,
    knee_x: float | None,
    ylabel: str,
) -> Chart:
    with figure() as (fig, (ax,)):
        ax.scatter(points_x, points_y, s=10, alpha=0.35, label="time windows")
        ax.plot(curve_x, curve_y, marker="o", label="binned median")
        if knee_x is not None:
            ax.axvline(knee_x, color=PALETTE[1], linestyle="--", label=f"knee at {knee_x:.1f} req/s")
        ax.set_xlabel("Throughput (requests/s)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
        return Chart(key, title, to_uri(fig), f"{title}: {ylabel} against throughput")


def ecdf_chart(key: str, title: str, xlabel: str, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Chart:
    """Empirical CDFs given as (values, cumulative fractions), one line per group, log x when wide."""
    with figure(height=4.2) as (fig, (ax,)):
        low, high = np.inf, 0.0
        for label, (values, fractions) in curves.items():
            ax.step(values, fractions, where="post", label=label)
            if len(values):
                low, high = min(low, float(values[0])), max(high, float(values[-1]))
        if np.isfinite(low) and low > 0 and high / low > 50:
            ax.set_xscale("log")
            # Plain numbers: mathtext is off (hostile labels), so the default 10^n labels would show raw.
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.6g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Fraction of requests (ECDF)")
        ax.set_ylim(0, 1.01)
        ax.set_title(title)
        ax.legend(loc="lower right")
        return Chart(key, title, to_uri(fig), f"{title}: cumulative distribution of {xlabel}")


def bar_chart(
    key: str, title: str, ylabel: str, groups: Sequence[str], bars: dict[str, Sequence[float]]
) -> Chart:
    """Grouped bars: one group per label in `groups`, one bar per key of `bars`."""
    with figure(height=3.8) as (fig, (ax,)):
        positions = np.arange(len(groups))
        width = 0.8 / max(1, len(bars))
        for index, (label, values) in enumerate(bars.items()):
            ax.bar(positions + index * width - 0.4 + width / 2, values, width, label=label)
        ax.set_xticks(positions, list(groups))
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(loc="upper left")
        return Chart(key, title, to_uri(fig), f"{title}: {ylabel} by group")


def level_chart(
    key: str,
    title: str,
    xlabel: str,
    ylabel: str,
    lines: Sequence[Series],
    thin: Sequence[str] = (),
    marker: tuple[float, str] | None = None,
) -> Chart:
    """Lines against a load level (not time): points marked, the series named in `thin` dashed,
    and an optional dotted vertical line (x, its legend label) at a level worth pointing at."""
    with figure() as (fig, (ax,)):
        for label, xs, ys in lines:
            style: dict[str, object] = {"marker": "o", "markersize": 3.5}
            if label in thin:
                style.update(linestyle="--", linewidth=1.0)
            ax.plot(xs, ys, label=label, **style)
        if marker is not None:
            ax.axvline(marker[0], color="#555555", linestyle=":", linewidth=1.4, label=marker[1])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        legend_below(ax, *ax.get_legend_handles_labels())
        return Chart(key, title, to_uri(fig), f"{title}: {ylabel} against {xlabel}")
