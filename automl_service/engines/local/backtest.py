"""Rolling-origin backtest windows, and how a forecaster's window scores are aggregated.

Pure (no I/O). A forecaster is scored on several windows of one series: trained on the
points before a cutoff, it forecasts the window's points after it. Window 0 is the last
``horizon`` points of the series; each further window moves the cutoff back by ``step``.
Every candidate of a job is scored on the same windows, and its canonical metrics are the
mean over windows, each window's value logged beside them as ``<metric>_window_<i>``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import PermanentError

#: Windows scored when the request does not say (fewer when the series is short).
DEFAULT_WINDOWS = 3
#: The suffix of a per-window metric: ``normalized_root_mean_squared_error_window_0``.
WINDOW_SUFFIX = "_window_"
#: The request field that sets the step between windows' cutoffs.
STEP_FIELD = "forecasting.cv_step_size"


@dataclass(frozen=True)
class Window:
    """Rows ``[cutoff, cutoff + length)`` of the series, forecast from the rows before."""

    index: int
    cutoff: int
    length: int

    @property
    def end(self) -> int:
        """One past the window's last row."""
        return self.cutoff + self.length


def window_times(times: Any, windows: Sequence[Window]) -> list[Any]:
    """Each window's times (numpy arrays), from a series' time column ``times``."""
    values = np.asarray(times)
    return [values[w.cutoff : w.end] for w in windows]


def min_train_rows(horizon: int) -> int:
    """The fewest points a window's training part may have: a few more than the horizon
    (as a single holdout required before), so lag features and trends have something to
    fit."""
    return horizon + 2


def plan_windows(
    n_rows: int,
    horizon: int,
    windows: int | None = None,
    step: int | None = None,
    what: str = "series",
) -> list[Window]:
    """The backtest windows of a series of ``n_rows`` points, latest first.

    ``windows`` (default ``DEFAULT_WINDOWS``, then as many as fit) windows of ``horizon``
    points, their cutoffs ``step`` (the request's ``forecasting.cv_step_size``; default
    ``horizon``) apart, the earliest keeping at least ``min_train_rows(horizon)`` points to
    train on. A series too short for one window, or for the number of windows asked for
    explicitly, is a PermanentError naming ``what`` and the counts. A ``step`` given that
    leaves room for fewer windows than asked for (or, when not asked, than a step of the
    horizon would give), when a smaller step would fit them, is a PermanentError naming
    ``STEP_FIELD`` and the largest step that does.
    """
    if horizon < 1:
        raise ValueError("the horizon must be at least 1")
    stride = horizon if step is None else step
    if stride < 1:
        raise ValueError("the step between windows must be at least 1")
    least = min_train_rows(horizon)
    room = n_rows - horizon - least  # how far the first cutoff may move back
    if room < 0:
        raise PermanentError(
            f"{what} has {n_rows} points: too short to forecast {horizon} from at least "
            f"{least} (needs {horizon + least})"
        )
    fit = room // stride + 1
    wanted = windows
    if wanted is None and step is not None:
        wanted = min(DEFAULT_WINDOWS, room // horizon + 1)
    if wanted is not None and wanted > fit:
        if step is not None and wanted <= room + 1:  # a smaller step fits them
            largest = room // (wanted - 1)
            raise PermanentError(
                f"{STEP_FIELD} = {step} leaves room for {fit} backtest window(s) of "
                f"{horizon} in {what} ({n_rows} points), not {wanted}; a step of at most "
                f"{largest} fits {wanted}"
            )
        raise PermanentError(
            f"{what} has {n_rows} points: room for {fit} backtest window(s) of {horizon} "
            f"with a step of {stride}, not the {windows} asked for"
        )
    count = min(DEFAULT_WINDOWS if windows is None else windows, fit)
    last_cutoff = n_rows - horizon
    return [Window(i, last_cutoff - i * stride, horizon) for i in range(count)]


def window_metric(name: str, index: int) -> str:
    """The name a metric of window ``index`` is logged under."""
    return f"{name}{WINDOW_SUFFIX}{index}"


def aggregate(per_window: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The trial's metrics from each window's (``per_window[i]`` is window ``i``): the mean
    over windows of every metric defined in all of them, plus each window's own values
    under ``window_metric``. A metric missing from some window has no mean: a mean over
    the windows where it happens to be defined would not compare with other trials'."""
    if not per_window:
        return {}
    shared = set.intersection(*(set(m) for m in per_window))
    out = {name: float(np.mean([m[name] for m in per_window])) for name in sorted(shared)}
    for index, metrics in enumerate(per_window):
        for name, value in sorted(metrics.items()):
            out[window_metric(name, index)] = float(value)
    return out


def window_params(windows: list[Window]) -> dict[str, Any]:
    """The backtest a trial was scored on, as run params."""
    steps = {a.cutoff - b.cutoff for a, b in itertools.pairwise(windows)}
    return {
        "backtest_windows": len(windows),
        "backtest_step": min(steps) if steps else windows[0].length,
    }
