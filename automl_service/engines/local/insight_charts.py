"""The insight charts, drawn with matplotlib (records of ``insight`` in, SVG text out).

Each chart is its own figure, drawn without pyplot (no global figure state) on the Agg
backend and written as SVG with its text kept as text. Sized to sit two abreast in the
HTML report at 1280 pixels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from .insight import Confusion, Curve, Importance, Residuals, WindowForecast

# Figures are drawn without pyplot; should anything reach for it, it gets no display.
matplotlib.use("Agg")

#: Figure size in inches (the SVG is 72 units an inch): two fit side by side in the report.
SIZE = (5.2, 3.8)
#: Most columns the importance chart shows.
TOP_FEATURES = 15
BLUE, ORANGE, GREY, GREEN = "#2b6cb0", "#d9480f", "#6b7280", "#2f7d3b"
WINDOW_COLOURS = ("#2b6cb0", "#d9480f", "#2f7d3b", "#7048e8", "#c2255c", "#0b7285")


def importance_chart(ranking: Sequence[Importance], metric: str) -> str:
    """Horizontal bars of the most important columns, most important on top, with the
    spread over repeats as error bars."""
    shown = list(ranking[:TOP_FEATURES])[::-1]
    height = max(SIZE[1], 1.2 + 0.28 * len(shown))
    figure = Figure(figsize=(SIZE[0], height))
    axes = figure.add_subplot()
    positions = list(range(len(shown)))
    axes.barh(
        positions,
        [i.mean for i in shown],
        xerr=[i.std for i in shown],
        color=BLUE,
        ecolor=GREY,
        capsize=2,
    )
    axes.set_yticks(positions, [_short(i.feature) for i in shown])
    axes.axvline(0, color=GREY, linewidth=0.8)
    axes.set_xlabel(f"loss of {metric}\nwhen the column is shuffled")
    more = f" (top {TOP_FEATURES} of {len(ranking)})" if len(ranking) > TOP_FEATURES else ""
    axes.set_title(f"Permutation importance{more}")
    return to_svg(figure)


def confusion_chart(matrix: Confusion) -> str:
    """Counts by true (rows) and predicted (columns) class, each cell shaded by its share
    of its true class."""
    counts = [list(row) for row in matrix.counts]
    shares = [[v / max(1, sum(row)) for v in row] for row in counts]
    n = len(matrix.classes)
    figure = Figure(figsize=(SIZE[0], SIZE[1]))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    labels = [_short(c, 14) for c in matrix.classes]
    tilted = n > 4
    axes.set_xticks(
        range(n), labels, rotation=30 if tilted else 0, ha="right" if tilted else "center"
    )
    axes.set_yticks(range(n), labels)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if n <= 12:
        size = 11 if n <= 5 else 8
        for i, row in enumerate(counts):
            for j, value in enumerate(row):
                colour = "white" if shares[i][j] > 0.6 else "#1d2430"
                axes.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=size)
    figure.colorbar(image, ax=axes, label="share of the true class")
    axes.set_title("Confusion matrix")
    return to_svg(figure)


def roc_chart(curve: Curve, positive: str) -> str:
    """The ROC curve of the positive class, with chance as the diagonal."""
    figure = Figure(figsize=SIZE)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=1, label="chance")
    axes.plot(curve.x, curve.y, color=BLUE, linewidth=2, label=f"AUC = {curve.area:.3f}")
    _unit_square(axes)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title(f"ROC curve (positive class {_short(positive, 24)})")
    axes.legend(loc="lower right")
    return to_svg(figure)


def precision_recall_chart(curve: Curve, positive: str, prevalence: float) -> str:
    """Precision against recall of the positive class; chance is its share of the rows."""
    figure = Figure(figsize=SIZE)
    axes = figure.add_subplot()
    axes.axhline(prevalence, color=GREY, linestyle="--", linewidth=1, label="chance")
    axes.step(
        curve.x,
        curve.y,
        where="post",
        color=ORANGE,
        linewidth=2,
        label=f"average precision = {curve.area:.3f}",
    )
    _unit_square(axes)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title(f"Precision-recall (positive class {_short(positive, 24)})")
    axes.legend(loc="lower left")
    return to_svg(figure)


def predicted_actual_chart(points: Residuals, target: str) -> str:
    """Each row's predicted against its actual value, with the line where they agree."""
    figure = Figure(figsize=SIZE)
    axes = figure.add_subplot()
    axes.scatter(points.actual, points.predicted, s=10, color=BLUE, alpha=0.6, linewidths=0)
    values = [*points.actual, *points.predicted]
    if values:
        lo, hi = min(values), max(values)
        axes.plot([lo, hi], [lo, hi], color=ORANGE, linewidth=1.5, label="predicted = actual")
        axes.legend(loc="upper left")
    axes.set_xlabel(f"actual {_short(target, 30)}")
    axes.set_ylabel(f"predicted {_short(target, 30)}")
    axes.set_title(f"Predicted against actual ({points.rows} rows)")
    return to_svg(figure)


def residuals_chart(points: Residuals, target: str) -> str:
    """Each row's error (actual less predicted) against its predicted value."""
    errors = [a - p for a, p in zip(points.actual, points.predicted, strict=True)]
    figure = Figure(figsize=SIZE)
    axes = figure.add_subplot()
    axes.axhline(0, color=ORANGE, linewidth=1.5)
    axes.scatter(points.predicted, errors, s=10, color=BLUE, alpha=0.6, linewidths=0)
    axes.set_xlabel(f"predicted {_short(target, 30)}")
    axes.set_ylabel("residual (actual - predicted)")
    axes.set_title(
        f"Residuals: mean {points.mean_error:.4g}, mean absolute {points.mean_absolute_error:.4g}"
    )
    return to_svg(figure)


def forecast_chart(windows: Sequence[WindowForecast], target: str) -> str:
    """Each backtest window's forecast beside the actual values, earliest window first;
    the band between the lowest and highest quantile shaded when there are quantiles."""
    figure = Figure(figsize=(SIZE[0] * 2, SIZE[1]))
    axes = figure.add_subplot()
    _draw_windows(axes, windows)
    axes.set_ylabel(_short(target, 30))
    axes.set_title("Backtest windows: forecast against actual (window 0 is the latest)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    figure.autofmt_xdate()
    return to_svg(figure)


def panel_forecast_chart(
    panels: Sequence[tuple[str, Sequence[WindowForecast]]], target: str
) -> str:
    """Many series: one small panel per series (two abreast), each as ``forecast_chart``,
    one legend for them all."""
    columns = min(2, len(panels))
    rows = (len(panels) + columns - 1) // columns
    figure = Figure(figsize=(SIZE[0] * 2, 0.9 + 2.6 * rows), layout="constrained")
    first = None
    for position, (name, windows) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, position + 1)
        _draw_windows(axes, windows)
        axes.set_title(_short(name, 40), fontsize=9)
        axes.set_ylabel(_short(target, 20), fontsize=8)
        axes.tick_params(labelsize=7)
        axes.tick_params(axis="x", labelrotation=30)
        first = first or axes
    if first is not None:
        handles, labels = first.get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8)
    figure.suptitle("Backtest windows: forecast against actual (window 0 is the latest)")
    return to_svg(figure)


def _draw_windows(axes: Any, windows: Sequence[WindowForecast]) -> None:
    """The actual values and each window's forecast (and quantile band) on ``axes``."""
    import pandas as pd

    ordered = sorted(windows, key=lambda w: w.times[0] if w.times else "")
    actual_labelled = False
    for position, window in enumerate(ordered):
        times = [pd.Timestamp(t).to_pydatetime() for t in window.times]
        colour = WINDOW_COLOURS[position % len(WINDOW_COLOURS)]
        axes.plot(
            times,
            window.actual,
            color="#1d2430",
            linewidth=1.5,
            label=None if actual_labelled else "actual",
        )
        actual_labelled = True
        if window.quantiles:
            low, high = min(window.quantiles), max(window.quantiles)
            axes.fill_between(
                times,
                window.quantiles[low],
                window.quantiles[high],
                color=colour,
                alpha=0.18,
                linewidth=0,
                label=f"window {window.index}: {low:g}-{high:g} quantiles",
            )
        axes.plot(
            times,
            window.forecast,
            color=colour,
            linewidth=2,
            linestyle="--",
            label=f"window {window.index} forecast",
        )


def to_svg(figure: Figure) -> str:
    """The figure as SVG text, its text as text (not paths), without a date stamp; laid
    out tight unless it has a layout of its own."""
    if figure.get_layout_engine() is None:
        figure.set_layout_engine("tight")
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "insight"}):
        FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None})  # type: ignore[no-untyped-call]
    return buffer.getvalue()


def _unit_square(axes: Any) -> None:
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.grid(color="#eceff3")


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
