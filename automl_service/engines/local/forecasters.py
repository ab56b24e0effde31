"""MLflow pyfunc forecasters: forecasts for the timestamps in the input rows.

Every registered forecasting model (a FLAML learner or a baseline) is a ``Forecaster``:
``predict`` takes rows with the time column (datetimes or ISO strings, as JSON carries
them) and any exogenous columns, in any order, and returns one forecast per row, in the
order given. The forecast for a timestamp is the model's forecast for that step after the
series, whatever else is asked with it: the model forecasts its whole path up to the
latest step asked and each row takes its step. A timestamp at or before the end of the
training data, off the series' frequency, or beyond the horizon raises ``OutsideHorizon``
naming it. With exogenous columns, the rows must give their values for every period up to
the latest one asked, since each step's forecast depends on the steps before it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.pyfunc.model import PythonModel
from mlflow.types.schema import AnyType, ColSpec, Schema, TensorSpec

from . import baselines
from .horizon import ForecastGrid, OutsideHorizon
from .intervals import Intervals
from .panel import lag_path

#: Rows of a forecaster's input example (the first periods after the series).
EXAMPLE_ROWS = 3


class Forecaster(PythonModel):
    """The shared contract: ``predict`` maps rows to the forecasts of their timestamps;
    with ``intervals``, to a table of the forecast and its quantiles."""

    #: Quantile offsets from the backtest (``intervals.conformal``), when asked for.
    intervals: Intervals | None = None

    def __init__(self, grid: ForecastGrid, exogenous: pd.DataFrame | None = None) -> None:
        self.grid = grid
        #: The last known row of the exogenous columns (their names and types), or None.
        self.exogenous = None if exogenous is None or exogenous.empty else exogenous.tail(1)

    @property
    def exogenous_columns(self) -> list[str]:
        return [] if self.exogenous is None else [str(c) for c in self.exogenous.columns]

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        point, steps = self.points(pd.DataFrame(model_input))
        return point if self.intervals is None else self.intervals.around(point, steps)

    def points(self, frame: pd.DataFrame) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The point forecast of each row, and its step after the model's last fitted
        time; OutsideHorizon naming a row it cannot answer."""
        time_col = self.grid.time_column
        if time_col not in frame.columns:
            raise OutsideHorizon(f"the rows have no {time_col!r} column")
        steps = self.grid.steps(frame[time_col])
        future = self.future_rows(frame, steps)
        path = np.asarray(self.path(future), dtype=float).ravel()
        return path[steps - 1], steps

    def path(self, future: pd.DataFrame) -> np.ndarray[Any, Any]:
        """Forecasts for every row of ``future`` (steps 1..n after the last fitted time)."""
        raise NotImplementedError

    def future_rows(self, frame: pd.DataFrame, steps: np.ndarray[Any, Any]) -> pd.DataFrame:
        """The rows of steps 1..max(steps): the time column, and the exogenous values the
        input gives for each step (OutsideHorizon naming a period it lacks)."""
        dates = self.grid.dates(int(steps.max()))
        future = pd.DataFrame({self.grid.time_column: dates})
        columns = self.exogenous_columns
        if not columns:
            return future
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise OutsideHorizon(f"the rows have no {', '.join(map(repr, missing))} column")
        by_step = pd.DataFrame(frame[columns].to_numpy(), columns=columns)
        by_step["_step"] = steps
        by_step = by_step.drop_duplicates("_step").set_index("_step")
        absent = [d for step, d in enumerate(dates, start=1) if step not in by_step.index]
        if absent:
            raise OutsideHorizon(
                f"exogenous values are needed for every period from {dates[0].isoformat()} "
                f"to {dates[-1].isoformat()}; no row for {absent[0].isoformat()}"
            )
        for column in columns:
            values = by_step.loc[range(1, len(dates) + 1), column].to_numpy()
            assert self.exogenous is not None
            future[column] = pd.Series(values).astype(self.exogenous[column].dtype)
        return future

    def example(self) -> pd.DataFrame:
        """Rows this model answers: its first periods, the last known exogenous values."""
        dates = self.grid.forecastable()[:EXAMPLE_ROWS]
        frame = pd.DataFrame({self.grid.time_column: dates})
        if self.exogenous is not None:
            for column in self.exogenous_columns:
                frame[column] = np.repeat(self.exogenous[column].to_numpy(), len(dates))
        return frame

    def signature(self) -> ModelSignature:
        """The input signature: the time column and the exogenous columns (by their
        training types). The time column is typed Any: MLflow's datetime type refuses the
        string columns pandas makes of JSON dates, its string type refuses datetimes, and
        the model itself reads both."""
        example = self.example()
        columns: list[ColSpec | TensorSpec] = [
            ColSpec(AnyType(), self.grid.time_column)  # type: ignore[no-untyped-call]
        ]
        if self.exogenous_columns:
            inferred = infer_signature(example[self.exogenous_columns]).inputs
            columns += list(inferred.inputs)
        return ModelSignature(
            inputs=Schema(columns),
            outputs=infer_signature(example, self.predict(None, example)).outputs,
        )


class BaselineForecaster(Forecaster):
    """A baseline (``baselines.forecast``) fitted on a history ending at ``grid.start``."""

    def __init__(
        self,
        kind: str,
        history: np.ndarray[Any, Any],
        grid: ForecastGrid,
        season: int,
    ) -> None:
        super().__init__(grid)
        self.kind = kind
        self.history = np.asarray(history, dtype=float)
        self.season = season

    def path(self, future: pd.DataFrame) -> np.ndarray[Any, Any]:
        return baselines.forecast(self.kind, self.history, len(future), self.season)


class LagForecaster(Forecaster):
    """LightGBM on the series' own scaled lags, step ahead and calendar (``panel.lag_rows``
    of the series alone), fitted on the series up to ``grid.start``."""

    def __init__(
        self, regressor: Any, lags: int, tail: np.ndarray[Any, Any], grid: ForecastGrid
    ) -> None:
        super().__init__(grid)
        self.regressor = regressor
        self.lags = lags
        #: The series' last ``lags`` values.
        self.tail = np.asarray(tail, dtype=float)

    def path(self, future: pd.DataFrame) -> np.ndarray[Any, Any]:
        dates = pd.DatetimeIndex(future[self.grid.time_column])
        return lag_path(self.regressor, self.tail, self.lags, 0, dates)


class EnsembleForecaster(Forecaster):
    """A weighted average of forecasters of one series (the VotingEnsemble): each row's
    forecast is its members' forecasts for its date, averaged with ``weights``; its
    quantiles come from the ensemble's own backtest errors."""

    def __init__(self, members: list[Forecaster], weights: list[float], grid: ForecastGrid) -> None:
        widest = max(members, key=lambda m: len(m.exogenous_columns))
        super().__init__(grid, widest.exogenous)
        self.members = members
        self.weights = [float(w) for w in weights]

    def points(self, frame: pd.DataFrame) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        time_col = self.grid.time_column
        if time_col not in frame.columns:
            raise OutsideHorizon(f"the rows have no {time_col!r} column")
        steps = self.grid.steps(frame[time_col])
        total = sum(self.weights)
        point = sum(
            w / total * m.points(frame)[0] for w, m in zip(self.weights, self.members, strict=True)
        )
        return np.asarray(point, dtype=float), steps


class FlamlForecaster(Forecaster):
    """A fitted FLAML forecasting learner plus FLAML's data transformer."""

    def __init__(
        self,
        estimator: Any,
        task: Any,
        transformer: Any,
        features: list[str],
        grid: ForecastGrid,
        exogenous: pd.DataFrame | None = None,
    ) -> None:
        super().__init__(grid, exogenous)
        self.estimator = estimator
        self.task = task
        self.transformer = transformer
        self.features = features
        #: Why the refit on the whole series failed (the model keeps its scored fit).
        self.refit_error: str | None = None

    def path(self, future: pd.DataFrame) -> np.ndarray[Any, Any]:
        present = [c for c in self.features if c in future.columns]
        rows = self.task.preprocess(future[present], self.transformer)
        return np.asarray(self.estimator.predict(rows), dtype=float).ravel()

    def refitted(self, series: Any, period: int, series_end: pd.Timestamp) -> None:
        """Refit on ``series`` (train and holdout, a FLAML dataset) so step 1 is the period
        after ``series_end``; when that fails the scored fit stays, its steps counted from
        its own end, and ``refit_error`` says why."""
        try:
            self.estimator.fit(series, period=period)
        except Exception as exc:  # any learner's own failure: keep the scored fit
            self.keep_scored_fit(series_end, str(exc)[:300])
            return
        self.grid = replace(self.grid, series_end=series_end, origin=None)

    def keep_scored_fit(self, series_end: pd.Timestamp, reason: str) -> None:
        """Not refitted (``reason``): the scored fit stays, its steps counted from its own
        end, and it answers for the horizon after ``series_end``, the whole series' end."""
        self.refit_error = reason
        self.grid = replace(self.grid, series_end=series_end, origin=self.grid.start)
