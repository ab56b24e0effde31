"""Forecasters answer for the timestamps they are given: the grid, the refusals, the order."""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd
import pytest

from automl_service.engines.local.budget import Budget
from automl_service.engines.local.forecasters import (
    BaselineForecaster,
    FlamlForecaster,
    Forecaster,
)
from automl_service.engines.local.horizon import ForecastGrid, OutsideHorizon
from automl_service.engines.local.search import NO_TIME_TO_REFIT, refit_forecasters
from automl_service.engines.local.trials import TrialLog

END = pd.Timestamp("2020-12-01")
GRID = ForecastGrid("date", "MS", END, horizon=6)


def months(*texts: str) -> pd.DataFrame:
    return pd.DataFrame({"date": list(texts)})


class Steps(Forecaster):
    """Forecasts 10 * step: which step a row was answered with is plain to see."""

    def path(self, future: pd.DataFrame) -> np.ndarray:
        return 10.0 * np.arange(1, len(future) + 1)


def test_steps_follow_the_frequency_grid() -> None:
    """Timestamps, as strings or datetimes, map to how many periods after the series they lie."""
    assert GRID.steps(["2021-03-01", "2021-01-01"]).tolist() == [3, 1]
    stamps = pd.Series(pd.to_datetime(["2021-06-01", "2021-02-01"]))
    assert GRID.steps(stamps).tolist() == [6, 2]
    assert GRID.steps(["2021-01-01T00:00:00Z"]).tolist() == [1]


def test_a_model_that_kept_an_earlier_fit_counts_steps_from_its_own_end() -> None:
    """With an origin before the series end, steps count from the origin; the dates it
    answers are still the horizon after the series."""
    grid = ForecastGrid("date", "MS", END, horizon=6, origin=pd.Timestamp("2020-06-01"))
    assert grid.steps(["2021-01-01", "2021-06-01"]).tolist() == [7, 12]
    with pytest.raises(OutsideHorizon, match="'2020-12-01' is at or before the end"):
        grid.steps(["2020-12-01"])


class _Learner:
    """A FLAML learner and task stand-in: forecasts 10 * step; counts refits."""

    fits = 0

    def preprocess(self, frame: pd.DataFrame, transformer: object) -> pd.DataFrame:
        return frame

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return 10.0 * np.arange(1, len(rows) + 1)

    def fit(self, series: object, period: int) -> None:
        self.fits += 1


class _Winners:
    """What ``refit_forecasters`` reads of a trial log: the winners."""

    def __init__(self, model: object) -> None:
        self.model = model

    def winners(self) -> list[tuple[object, object]]:
        return [(None, self.model)]


def test_a_forecaster_left_unrefitted_for_lack_of_time_still_forecasts_after_the_series() -> None:
    """With the time limit reached the scored fit (on the points before the latest window,
    ending six months before the series) is kept, says why, and answers for the horizon
    after the whole series, its steps counted from its own end."""
    learner = _Learner()
    scored = ForecastGrid("date", "MS", pd.Timestamp("2020-06-01"), horizon=6)
    model = FlamlForecaster(learner, learner, None, ["date"], scored)
    spent = Budget(10, started_at=0.0, clock=lambda: 20.0)
    refit_forecasters(cast(TrialLog, _Winners(model)), object(), 6, END, spent)
    assert learner.fits == 0 and model.refit_error == NO_TIME_TO_REFIT
    assert model.predict(None, months("2021-01-01", "2021-06-01")).tolist() == [70.0, 120.0]
    with pytest.raises(OutsideHorizon, match="at or before the end of the training data"):
        model.predict(None, months("2020-12-01"))


@pytest.mark.parametrize(
    ("asked", "says"),
    [
        ("2020-12-01", "'2020-12-01' is at or before the end of the training data"),
        ("2019-05-01", "'2019-05-01' is at or before the end of the training data"),
        ("2021-07-01", "'2021-07-01' is beyond the forecast horizon: this model forecasts 6"),
        ("2021-02-15", "'2021-02-15' is not on the series' frequency MS"),
        ("next month", "'next month' is not a date"),
    ],
)
def test_dates_outside_the_horizon_are_refused_by_name(asked: str, says: str) -> None:
    """A row at or before the series end, beyond the horizon, off the frequency or not a
    date is refused with a message naming it, even among good rows."""
    model = Steps(GRID)
    with pytest.raises(OutsideHorizon, match=says):
        model.predict(None, months("2021-01-01", asked))


def test_each_row_gets_the_forecast_of_its_own_date() -> None:
    """Rows in any order, alone or together, get the forecast of their own step."""
    model = Steps(GRID)
    assert model.predict(None, months("2021-04-01", "2021-01-01")).tolist() == [40.0, 10.0]
    assert model.predict(None, months("2021-06-01")).tolist() == [60.0]


def test_baseline_forecasts_do_not_depend_on_the_rows_asked_with() -> None:
    """A seasonal baseline's forecast for a date is the same shuffled, alone, or as datetimes."""
    history = np.arange(24, dtype=float) % 12
    model = BaselineForecaster("SeasonalNaive", history, GRID, season=12)
    dates = [f"2021-0{m}-01" for m in range(1, 7)]
    ahead = model.predict(None, months(*dates))
    assert ahead.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    shuffled = [4, 0, 5, 2, 1, 3]
    again = model.predict(None, months(*[dates[i] for i in shuffled]))
    assert again.tolist() == [ahead[i] for i in shuffled]
    assert model.predict(None, months(dates[3])).tolist() == [ahead[3]]
    as_datetimes = pd.DataFrame({"date": pd.to_datetime(dates)})
    assert model.predict(None, as_datetimes).tolist() == ahead.tolist()


def test_exogenous_values_are_needed_for_every_period_up_to_the_last() -> None:
    """With exogenous columns, a row missing for a period before the latest asked is
    refused naming that period; given all, each row takes its own step."""
    model = Steps(GRID, exogenous=pd.DataFrame({"promo": [0, 1]}))
    rows = pd.DataFrame({"date": ["2021-03-01", "2021-01-01", "2021-02-01"], "promo": [1, 0, 0]})
    assert model.predict(None, rows).tolist() == [30.0, 10.0, 20.0]
    with pytest.raises(OutsideHorizon, match="no row for 2021-02-01"):
        model.predict(None, rows.drop(index=2))
    assert list(model.signature().inputs.input_names()) == ["date", "promo"]
