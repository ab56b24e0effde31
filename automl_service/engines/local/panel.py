"""Many series in one table: splitting it by series id, backtest windows, lag features.

Pure (pandas, numpy). A ``Panel`` holds each series (its id, timestamps and values, in time
order); its backtest windows are the same for every series, counted from each series' own
end (window 0 is each series' last ``horizon`` points). The global model learns from
every series at once on scaled lag features (``lag_rows``): for an origin ``o`` and a step
``s`` its row holds the ``lags`` values up to ``o`` divided by their mean absolute value,
the step, the target date's calendar and the series' number; its target is the value at
``o + s`` scaled the same way. One model so forecasts any step of the horizon directly,
from the last known values only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...errors import PermanentError
from .backtest import Window, min_train_rows, plan_windows

#: A series id: the values of its id columns, as text (JSON may carry 7 or "7").
SeriesKey = tuple[str, ...]


@dataclass(frozen=True)
class Series:
    key: SeriesKey
    times: pd.DatetimeIndex
    values: np.ndarray[Any, Any]


@dataclass(frozen=True)
class Panel:
    """The series of one table, in the order their ids first appear."""

    id_columns: tuple[str, ...]
    series: tuple[Series, ...]

    def describe(self, key: SeriesKey) -> str:
        """A series id as the user wrote it: ``firm='IBM'``."""
        return ", ".join(f"{c}={v!r}" for c, v in zip(self.id_columns, key, strict=True))

    def windows(
        self, horizon: int, windows: int | None = None, step: int | None = None
    ) -> list[Window]:
        """The backtest windows every series is scored on (positions from each series' own
        end, latest first), as many as the shortest series has room for; a series too
        short for one window is a PermanentError naming it."""
        shortest = min(self.series, key=lambda s: len(s.values))
        return plan_windows(
            len(shortest.values),
            horizon,
            windows,
            step,
            what=f"series {self.describe(shortest.key)}",
        )


def key_of(values: Sequence[Any]) -> SeriesKey:
    """The series key of one row's id values."""
    return tuple(str(v) for v in values)


def split_panel(
    frame: pd.DataFrame, id_columns: Sequence[str], time_column: str, target: str
) -> Panel:
    """The table's series: rows with a target, by id, sorted by time. A series with a
    timestamp twice is a PermanentError naming it and the timestamp."""
    frame = frame.dropna(subset=[target]).copy()
    frame[time_column] = pd.to_datetime(frame[time_column])
    ids = list(id_columns)
    found = []
    for raw, rows in frame.groupby(ids, sort=False, dropna=False):
        key = key_of(raw if isinstance(raw, tuple) else (raw,))
        rows = rows.sort_values(time_column)
        times = pd.DatetimeIndex(rows[time_column])
        doubled = times[times.duplicated()]
        if len(doubled):
            described = ", ".join(f"{c}={v!r}" for c, v in zip(ids, key, strict=True))
            raise PermanentError(f"series {described} has {doubled[0].isoformat()} more than once")
        found.append(Series(key, times, rows[target].to_numpy(dtype=float)))
    if not found:
        raise PermanentError("the table has no rows with a target value")
    return Panel(tuple(ids), tuple(found))


def panel_frequency(panel: Panel) -> str | None:
    """The frequency pandas infers from the longest series, or None."""
    import warnings

    longest = max(panel.series, key=lambda s: len(s.times))
    if len(longest.times) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(longest.times)
    return None if freq is None else str(getattr(freq, "freqstr", freq))


def lag_count(season: int, horizon: int) -> int:
    """How many past values the global model sees: a season (at least 3), but no more than
    the shortest training part of a window leaves room for (horizon + 2 points)."""
    return max(1, min(max(season, 3), min_train_rows(horizon) - 1))


def calendar(dates: pd.DatetimeIndex) -> np.ndarray[Any, Any]:
    """Calendar features of target dates: month and day of week."""
    return np.column_stack([dates.month.to_numpy(), dates.day_of_week.to_numpy()]).astype(float)


def scaled_lags(values: np.ndarray[Any, Any], origin: int, lags: int) -> tuple[Any, float]:
    """The ``lags`` values up to ``origin`` (latest first) divided by their mean absolute
    value, and that scale (1 when they are all zero)."""
    window = values[origin - lags + 1 : origin + 1][::-1]
    scale = float(np.mean(np.abs(window)))
    scale = scale if scale > 0 and np.isfinite(scale) else 1.0
    return window / scale, scale


def feature_row(
    values: np.ndarray[Any, Any], origin: int, lags: int, step: int, code: int,
    date: pd.Timestamp,
) -> tuple[np.ndarray[Any, Any], float]:  # fmt: skip
    """One row of the global model's features for ``step`` after ``origin``, and the scale
    its target is divided by."""
    lagged, scale = scaled_lags(values, origin, lags)
    row = np.concatenate(
        [lagged, [float(step), float(code)], calendar(pd.DatetimeIndex([date]))[0]]
    )
    return row, scale


def lag_rows(
    panel: Panel, cutoffs: Sequence[int], lags: int, horizon: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Training rows of the global model: for each series ``i``, every origin and step
    whose target lies before ``cutoffs[i]`` (its first unseen point); features and
    scaled targets."""
    rows, targets = [], []
    for code, (series, cutoff) in enumerate(zip(panel.series, cutoffs, strict=True)):
        for origin in range(lags - 1, cutoff - 1):
            for step in range(1, min(horizon, cutoff - 1 - origin) + 1):
                row, scale = feature_row(
                    series.values, origin, lags, step, code, series.times[origin + step]
                )
                rows.append(row)
                targets.append(series.values[origin + step] / scale)
    if not rows:
        raise ValueError("no training rows for the global model")
    return np.vstack(rows), np.asarray(targets, dtype=float)


def forecast_rows(
    values: np.ndarray[Any, Any], origin: int, lags: int, code: int, dates: pd.DatetimeIndex
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The global model's rows for steps 1..len(dates) after ``origin``, and the scale of
    each (to multiply its prediction by)."""
    made = [
        feature_row(values, origin, lags, step, code, date)
        for step, date in enumerate(dates, start=1)
    ]
    return np.vstack([r for r, _ in made]), np.asarray([s for _, s in made], dtype=float)
