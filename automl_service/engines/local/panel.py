"""Many series in one table: splitting it by series id, backtest windows, lag features.

Pure (pandas, numpy). A ``Panel`` holds each series (its id, timestamps and values, in time
order); its backtest windows are the same for every series, counted from each series' own
end (window 0 is each series' last ``horizon`` points). The global model learns from
every series at once on scaled lag features (``lag_rows``): for an origin ``o`` and a step
``s`` its row holds the ``lags`` values up to ``o`` divided by their mean absolute value,
the step, the target date's calendar and the series' number; its target is the value at
``o + s`` scaled the same way. One model so forecasts any step of the horizon directly,
from the last known values only. A ``OneStepAhead`` model is the other way, as one writes
it by hand: trained on rows of the raw lags (``scaled=False``, step 1 only), it forecasts
the next value and is fed its own forecasts for the steps after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...errors import PermanentError
from .backtest import Window, plan_windows

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


def lag_count(season: int, horizon: int, train_rows: int) -> int:
    """How many past values the lag models see: a season or a horizon, whichever is
    longer (at least 3), so that a value one season before every forecast date is among
    them; but at most half of ``train_rows``, the fewest points a window leaves to train
    on, so that every window still has origins to learn from."""
    return max(1, min(max(season, horizon, 3), train_rows // 2))


def cutoffs(panel: Panel, window: Window) -> list[int]:
    """Each series' cutoff of ``window`` (planned on the shortest series): as many points
    from its own end."""
    shortest = min(len(s.values) for s in panel.series)
    back = shortest - window.cutoff
    return [len(s.values) - back for s in panel.series]


def window_rows(
    panel: Panel, windows: Sequence[Window]
) -> tuple[list[np.ndarray[Any, Any]], list[np.ndarray[Any, Any]]]:
    """Each window's rows as its folds pool them (series after series, in panel order):
    their times, and their series described (``firm='IBM'``)."""
    times, labels = [], []
    for window in windows:
        when, which = [], []
        for series, cutoff in zip(panel.series, cutoffs(panel, window), strict=True):
            when.append(series.times[cutoff : cutoff + window.length].to_numpy())
            which.append(np.full(window.length, panel.describe(series.key), dtype=object))
        times.append(np.concatenate(when))
        labels.append(np.concatenate(which))
    return times, labels


def calendar(dates: pd.DatetimeIndex) -> np.ndarray[Any, Any]:
    """Calendar features of target dates: month and day of week."""
    return np.column_stack([dates.month.to_numpy(), dates.day_of_week.to_numpy()]).astype(float)


def _scaled(
    windows: np.ndarray[Any, Any], scaled: bool = True
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Lag windows (one per row, latest value first) divided by their mean absolute
    value, and those scales (1 where a window is all zeros, or when not ``scaled``)."""
    if not scaled:
        return windows, np.ones(len(windows))
    scales = np.mean(np.abs(windows), axis=1)
    scales = np.where((scales > 0) & np.isfinite(scales), scales, 1.0)
    return windows / scales[:, None], scales


def _features(
    lagged: np.ndarray[Any, Any], steps: np.ndarray[Any, Any], code: int, dates: pd.DatetimeIndex
) -> np.ndarray[Any, Any]:
    """Rows of scaled lags, the step ahead, the series' number and the target dates'
    calendar."""
    codes = np.full(len(steps), float(code))
    return np.column_stack([lagged, steps.astype(float), codes, calendar(dates)])


def lag_rows(
    panel: Panel, cutoffs: Sequence[int], lags: int, horizon: int, scaled: bool = True
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Training rows of the global model: for each series ``i``, every origin and step
    whose target lies before ``cutoffs[i]`` (its first unseen point), origin by origin;
    features and targets, scaled unless not ``scaled``."""
    rows, targets = [], []
    for code, (series, cutoff) in enumerate(zip(panel.series, cutoffs, strict=True)):
        if cutoff - 1 <= lags - 1:
            continue
        seen = series.values[:cutoff]
        windows = np.lib.stride_tricks.sliding_window_view(seen, lags)[:, ::-1]
        # Origin o (its window ends at o) and step s, with o + s before the cutoff.
        origins = np.concatenate(
            [np.arange(lags - 1, cutoff - s) for s in range(1, horizon + 1)]
        ).astype(int)
        steps = np.concatenate(
            [np.full(max(cutoff - s - lags + 1, 0), s) for s in range(1, horizon + 1)]
        ).astype(int)
        order = np.lexsort((steps, origins))
        origins, steps = origins[order], steps[order]
        lagged, scales = _scaled(windows[origins - lags + 1], scaled)
        dates = series.times[origins + steps]
        rows.append(_features(lagged, steps, code, dates))
        targets.append(seen[origins + steps] / scales)
    if not rows:
        raise ValueError("no training rows for the global model")
    return np.vstack(rows), np.concatenate(targets).astype(float)


def forecast_rows(
    values: np.ndarray[Any, Any], origin: int, lags: int, code: int, dates: pd.DatetimeIndex
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The global model's rows for steps 1..len(dates) after ``origin``, and the scale of
    each (to multiply its prediction by)."""
    window = np.asarray(values, dtype=float)[origin - lags + 1 : origin + 1][::-1]
    lagged, scales = _scaled(np.tile(window, (len(dates), 1)))
    steps = np.arange(1, len(dates) + 1)
    return _features(lagged, steps, code, pd.DatetimeIndex(dates)), scales


class OneStepAhead:
    """A regressor trained on raw lags for the next value only (``lag_rows`` with
    ``horizon=1, scaled=False``), forecasting further steps from its own forecasts."""

    def __init__(self, regressor: Any) -> None:
        self.regressor = regressor

    def path(
        self, tail: np.ndarray[Any, Any], lags: int, code: int, dates: pd.DatetimeIndex
    ) -> np.ndarray[Any, Any]:
        """Forecasts for ``dates``, the steps after ``tail``, each fed back as a lag."""
        return self.paths([tail], lags, [code], [pd.DatetimeIndex(dates)])[0]

    def paths(
        self,
        tails: Sequence[np.ndarray[Any, Any]],
        lags: int,
        codes: Sequence[int],
        dates: Sequence[pd.DatetimeIndex],
    ) -> list[np.ndarray[Any, Any]]:
        """``path`` of several series at once (as many dates each), one prediction per
        step for them all."""
        known = np.array([np.asarray(t, dtype=float)[-lags:] for t in tails])
        for step in range(len(dates[0])):
            rows = np.vstack(
                [
                    _features(window[::-1][None, :], np.ones(1), code, when[step : step + 1])
                    for window, code, when in zip(known[:, -lags:], codes, dates, strict=True)
                ]
            )
            ahead = np.asarray(self.regressor.predict(rows), dtype=float).ravel()
            known = np.column_stack([known, ahead])
        return list(known[:, lags:])


def lag_path(
    regressor: Any, tail: np.ndarray[Any, Any], lags: int, code: int, dates: pd.DatetimeIndex
) -> np.ndarray[Any, Any]:
    """A lag model's forecasts for ``dates`` (steps 1..n after the last value of ``tail``,
    the series' last ``lags`` values at least)."""
    if isinstance(regressor, OneStepAhead):
        return regressor.path(tail, lags, code, dates)
    rows, scales = forecast_rows(tail, len(tail) - 1, lags, code, dates)
    predicted: np.ndarray[Any, Any] = np.asarray(regressor.predict(rows), dtype=float) * scales
    return predicted
