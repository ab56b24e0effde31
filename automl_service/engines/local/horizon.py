"""Which forecast step each requested timestamp is, and which timestamps a model refuses.

Pure (pandas only). A ``ForecastGrid`` describes what a registered forecaster can answer:
the dates on the series' frequency after the end of the data it was given, up to its
horizon. ``steps`` maps each requested timestamp (a datetime or an ISO string, as JSON
carries it) to its step after the model's own last fitted time, or raises
``OutsideHorizon`` naming the first offending value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


class OutsideHorizon(ValueError):
    """A requested row the forecaster cannot answer; the message names the value and why."""


@dataclass(frozen=True)
class ForecastGrid:
    """The timestamps a forecaster answers for.

    ``series_end`` is the last timestamp of the data the user trained on (nothing at or
    before it is forecast); ``origin`` the last timestamp the model itself was fitted on
    (its step 1 is the period after it: the same as ``series_end`` unless the model kept
    an earlier fit); ``horizon`` how many periods after ``series_end`` it forecasts.
    """

    time_column: str
    freq: str
    series_end: pd.Timestamp
    horizon: int
    origin: pd.Timestamp | None = None

    @property
    def start(self) -> pd.Timestamp:
        """The model's step 0: its last fitted timestamp."""
        return self.series_end if self.origin is None else self.origin

    def dates(self, steps: int) -> pd.DatetimeIndex:
        """The timestamps of steps 1..``steps`` after the model's last fitted time."""
        grid = pd.date_range(self.start, periods=steps + 1, freq=self.freq)
        if len(grid) and grid[0] == self.start:
            return grid[1:]
        return grid[:steps]

    def forecastable(self) -> pd.DatetimeIndex:
        """Every timestamp the model answers for: the ``horizon`` periods after the series."""
        return pd.date_range(self.series_end, periods=self.horizon + 1, freq=self.freq)[1:]

    def steps(self, values: Any) -> np.ndarray[Any, Any]:
        """For each value (in the order given), its step after the model's last fitted
        time (1 = the next period). Raises OutsideHorizon naming the first value that is
        not a date, lies at or before the end of the series, is off the frequency, or is
        beyond the horizon."""
        stamps = parse_times(values)
        allowed = self.forecastable()
        if not len(allowed):
            raise OutsideHorizon("this model has no forecast horizon")
        last = allowed[-1]
        # Steps are counted from the model's own last fitted time.
        position = {ts: i + 1 for i, ts in enumerate(self.dates_until(last))}
        allowed_set = set(allowed)
        steps = []
        for raw, ts in zip(_as_list(values), stamps, strict=True):
            shown = _show(raw)
            if ts <= self.series_end:
                raise OutsideHorizon(
                    f"{shown} is at or before the end of the training data "
                    f"({self.series_end.isoformat()}); forecasts start at {allowed[0].isoformat()}"
                )
            if ts > last:
                raise OutsideHorizon(
                    f"{shown} is beyond the forecast horizon: this model forecasts "
                    f"{self.horizon} period(s) of {self.freq}, {allowed[0].isoformat()} "
                    f"to {last.isoformat()}"
                )
            if ts not in allowed_set:
                raise OutsideHorizon(
                    f"{shown} is not on the series' frequency {self.freq}; "
                    f"forecast dates are {', '.join(d.isoformat() for d in allowed[:3])}"
                    + (", ..." if len(allowed) > 3 else "")
                )
            steps.append(position[ts])
        return np.asarray(steps, dtype=int)

    def dates_until(self, last: pd.Timestamp) -> pd.DatetimeIndex:
        """The step dates from the model's step 1 up to ``last`` included."""
        return pd.date_range(self.start, last, freq=self.freq)[1:]


def parse_times(values: Any) -> list[pd.Timestamp]:
    """Each value as a timezone-naive Timestamp (aware ones in UTC); OutsideHorizon naming
    the first value that is not a date."""
    out = []
    for raw in _as_list(values):
        try:
            ts = pd.Timestamp(raw)
        except (ValueError, TypeError, OverflowError):
            raise OutsideHorizon(f"{_show(raw)} is not a date") from None
        if ts is pd.NaT or pd.isna(ts):
            raise OutsideHorizon(f"{_show(raw)} is not a date")
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        out.append(ts)
    return out


def _as_list(values: Any) -> list[Any]:
    """The values one by one (a datetime column gives Timestamps)."""
    return list(pd.Series(values).tolist())


def _show(raw: Any) -> str:
    if isinstance(raw, pd.Timestamp | np.datetime64):
        return repr(pd.Timestamp(raw).isoformat())
    return repr(str(raw))
