"""MLflow pyfunc forecasters of many series: one forecast per row, for its series and date.

``predict`` takes rows holding the series id columns and the time column (datetimes or
ISO strings), in any order and for any mix of series, and returns one forecast per row in
the order given: the forecast of that row's series for that row's date. Each series is
forecast from its own end, up to the horizon; dates are checked as a single series'
(``horizon.ForecastGrid``). A series id the model was not trained on, or a date it cannot
forecast, raises ``OutsideHorizon`` naming it (a 400 from a local endpoint).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.pyfunc.model import PythonModel
from mlflow.types.schema import AnyType, ColSpec, Schema

from . import baselines
from .horizon import ForecastGrid, OutsideHorizon
from .intervals import Intervals
from .panel import SeriesKey, key_of, lag_path

#: Series shown in an input example (each with its first forecast date).
EXAMPLE_SERIES = 2


class PanelForecaster(PythonModel):
    """The shared contract of many-series models; subclasses give ``path``. With
    ``intervals``, ``predict`` answers a table of the forecast and its quantiles."""

    #: Quantile offsets from the backtest (``intervals.conformal``), when asked for.
    intervals: Intervals | None = None

    def __init__(
        self,
        time_column: str,
        id_columns: tuple[str, ...],
        freq: str,
        horizon: int,
        ends: dict[SeriesKey, pd.Timestamp],
    ) -> None:
        self.time_column = time_column
        self.id_columns = id_columns
        self.freq = freq
        self.horizon = horizon
        #: Each series' last training timestamp, by series key.
        self.ends = ends

    def grid(self, key: SeriesKey) -> ForecastGrid:
        """The dates series ``key`` is forecast for."""
        return ForecastGrid(self.time_column, self.freq, self.ends[key], self.horizon)

    def describe(self, key: SeriesKey) -> str:
        return ", ".join(f"{c}={v!r}" for c, v in zip(self.id_columns, key, strict=True))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        out, ahead = self.points(pd.DataFrame(model_input))
        return out if self.intervals is None else self.intervals.around(out, ahead)

    def points(self, frame: pd.DataFrame) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The point forecast of each row, and its step after its series' end;
        OutsideHorizon naming a row it cannot answer."""
        frame = frame.reset_index(drop=True)
        missing = [c for c in (*self.id_columns, self.time_column) if c not in frame.columns]
        if missing:
            raise OutsideHorizon(f"the rows have no {', '.join(map(repr, missing))} column")
        rows: dict[SeriesKey, list[int]] = {}
        for position, values in enumerate(
            frame[list(self.id_columns)].itertuples(index=False, name=None)
        ):
            rows.setdefault(key_of(values), []).append(position)
        for key in rows:
            if key not in self.ends:
                known = ", ".join(f"({self.describe(k)})" for k in list(self.ends)[:3])
                raise OutsideHorizon(
                    f"series {self.describe(key)} is not one this model was trained on; "
                    f"it forecasts {len(self.ends)} series, such as {known}"
                )
        out = np.empty(len(frame), dtype=float)
        ahead = np.empty(len(frame), dtype=int)
        for key, positions in rows.items():
            grid = self.grid(key)
            try:
                steps = grid.steps(frame[self.time_column].iloc[positions])
            except OutsideHorizon as exc:
                raise OutsideHorizon(f"series {self.describe(key)}: {exc}") from None
            path = np.asarray(self.path(key, grid.dates(int(steps.max()))), dtype=float)
            out[positions] = path[steps - 1]
            ahead[positions] = steps
        return out, ahead

    def path(self, key: SeriesKey, dates: pd.DatetimeIndex) -> np.ndarray[Any, Any]:
        """Forecasts of series ``key`` for ``dates`` (steps 1..n after its end)."""
        raise NotImplementedError

    def example(self) -> pd.DataFrame:
        """Rows this model answers: the first forecast date of its first series."""
        keys = list(self.ends)[:EXAMPLE_SERIES]
        frame = pd.DataFrame(keys, columns=list(self.id_columns))
        frame[self.time_column] = [self.grid(k).forecastable()[0] for k in keys]
        return frame

    def signature(self) -> ModelSignature:
        """The input signature: the id columns and the time column, typed Any (ids may come
        as numbers or text, dates as strings or datetimes)."""
        example = self.example()
        columns = [
            ColSpec(AnyType(), name)  # type: ignore[no-untyped-call]
            for name in (*self.id_columns, self.time_column)
        ]
        return ModelSignature(
            inputs=Schema(columns),  # type: ignore[arg-type]
            outputs=infer_signature(example, self.predict(None, example)).outputs,
        )


class PanelBaseline(PanelForecaster):
    """A baseline (``baselines.forecast``) per series, each from its own history."""

    def __init__(
        self,
        kind: str,
        histories: dict[SeriesKey, np.ndarray[Any, Any]],
        season: int,
        **grid: Any,
    ) -> None:
        super().__init__(**grid)
        self.kind = kind
        self.histories = histories
        self.season = season

    def path(self, key: SeriesKey, dates: pd.DatetimeIndex) -> np.ndarray[Any, Any]:
        ahead = baselines.forecast(self.kind, self.histories[key], len(dates), self.season)
        return np.asarray(ahead, dtype=float)


class PanelGlobal(PanelForecaster):
    """One regressor over every series on scaled lag features (``panel.lag_rows``)."""

    def __init__(
        self,
        regressor: Any,
        lags: int,
        tails: dict[SeriesKey, np.ndarray[Any, Any]],
        codes: dict[SeriesKey, int],
        **grid: Any,
    ) -> None:
        super().__init__(**grid)
        self.regressor = regressor
        self.lags = lags
        #: Each series' last ``lags`` values.
        self.tails = tails
        #: Each series' number among the model's features.
        self.codes = codes

    def path(self, key: SeriesKey, dates: pd.DatetimeIndex) -> np.ndarray[Any, Any]:
        return lag_path(self.regressor, self.tails[key], self.lags, self.codes[key], dates)


class PanelEnsemble(PanelForecaster):
    """A weighted average of many-series models (the VotingEnsemble): each row's forecast
    is its members' forecasts for its series and date, averaged with ``weights``."""

    def __init__(self, members: list[PanelForecaster], weights: list[float], **grid: Any) -> None:
        super().__init__(**grid)
        self.members = members
        self.weights = [float(w) for w in weights]

    def points(self, frame: pd.DataFrame) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        total = sum(self.weights)
        answers = [m.points(frame) for m in self.members]
        point = sum(w / total * a[0] for w, a in zip(self.weights, answers, strict=True))
        return np.asarray(point, dtype=float), answers[0][1]
