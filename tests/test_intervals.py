"""Forecast quantiles from backtest errors: per step when enough were seen, ordered, and
carried by the local models' forecasts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_service.engines.local.intervals import (
    MIN_PER_STEP,
    conformal,
    quantile_column,
    with_intervals,
)
from automl_service.engines.local.predictions import Fold


def fold(errors: list[float]) -> Fold:
    """A window whose forecasts are 0 and whose actual values are ``errors``."""
    return Fold(np.asarray(errors, dtype=float), np.zeros(len(errors)))


def test_each_step_takes_its_own_errors_when_there_are_enough() -> None:
    # Two steps ahead; step 1 errs by about 1, step 2 by about 10, in 12 windows.
    rng = np.random.default_rng(0)
    folds = [fold([rng.normal(0, 1), rng.normal(0, 10)]) for _ in range(12)]
    intervals = conformal(folds, [2] * 12, [0.9, 0.1])
    assert intervals.quantiles == (0.1, 0.9)
    low, high = intervals.offsets[:, 0], intervals.offsets[:, 1]
    assert (low < 0).all() and (high > 0).all()
    assert high[1] - low[1] > 3 * (high[0] - low[0])  # the further step is wider


def test_few_errors_per_step_pool_every_step() -> None:
    folds = [fold([1.0, 2.0, 3.0]), fold([-1.0, -2.0, -3.0]), fold([0.5, 0.0, -0.5])]
    assert len(folds) < MIN_PER_STEP
    intervals = conformal(folds, [3, 3, 3], [0.5])
    assert np.allclose(intervals.offsets, np.median([1, 2, 3, -1, -2, -3, 0.5, 0, -0.5]))


def test_panel_windows_pool_each_step_across_series() -> None:
    # Two series, 2 steps each, one after the other in each window's fold.
    folds = [fold([1.0, 10.0, 1.0, 10.0])] * 5
    intervals = conformal(folds, [2] * 5, [0.5])
    assert intervals.offsets[:, 0].tolist() == [1.0, 10.0]


def test_the_forecast_and_its_quantiles_come_back_ordered() -> None:
    intervals = conformal([fold([-2.0, -1.0, 0.0, 1.0, 2.0] * 4)], [1], [0.1, 0.5, 0.9])
    frame = intervals.around(np.array([10.0, 20.0]), np.array([1, 3]))
    assert list(frame.columns) == ["forecast", "quantile_0.1", "quantile_0.5", "quantile_0.9"]
    values = frame.to_numpy()
    assert (np.diff(values[:, 1:], axis=1) >= 0).all()
    assert quantile_column(0.05) == "quantile_0.05"


def test_no_quantiles_asked_leaves_the_model_as_it_was() -> None:
    class Model:
        intervals = None

    assert with_intervals(Model(), None, [fold([1.0])], [1]).intervals is None
    assert with_intervals(Model(), [0.5], [fold([float("nan")])], [1]).intervals is None
    assert with_intervals(Model(), [0.5], [fold([1.0])], [1]).intervals is not None


FORECASTS = {
    "FLAML learner": {
        "training_data": "sample:co2",
        "target_column_name": "co2",
        "forecasting": {"time_column_name": "date", "forecast_horizon": 6},
        "training": {"allowed_algorithms": ["LightGBM"]},
    },
    "baseline": {
        "training_data": "sample:co2",
        "target_column_name": "co2",
        "forecasting": {"time_column_name": "date", "forecast_horizon": 6},
        "training": {"allowed_algorithms": ["SeasonalNaive"]},
    },
    "many series": {
        "training_data": "sample:grunfeld",
        "target_column_name": "invest",
        "forecasting": {
            "time_column_name": "year",
            "forecast_horizon": 3,
            "time_series_id_column_names": ["firm"],
        },
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(FORECASTS))
def test_local_forecasters_answer_with_their_quantiles_in_order(tmp_path: Path, kind: str) -> None:
    """Trained for real: the leader forecasts its rows with the quantiles asked for, in
    order, and its output signature names them."""
    from mlflow import MlflowClient

    from automl_service.engines.local.search import search
    from automl_service.engines.local.trials import Objective, TrialLog
    from automl_service.metrics import Goal
    from automl_service.request import AutoMLRequest

    body = FORECASTS[kind]
    forecasting = {**body["forecasting"], "forecast_quantiles": [0.9, 0.1, 0.5]}  # type: ignore[dict-item]
    request = AutoMLRequest.model_validate(
        {**body, "task": "forecasting", "forecasting": forecasting,
         "limits": {"timeout_seconds": 10, "max_trials": 2}}
    )  # fmt: skip
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("q", artifact_location=(tmp_path / "a").as_uri())
    parent = client.create_run(experiment).info.run_id
    nrmse = "normalized_root_mean_squared_error"
    log = TrialLog(client, experiment, parent, "q", 1, [Objective(nrmse, Goal.MINIMIZE)])
    ((_, model),) = search(request, log)
    answer = model.predict(None, model.example())
    assert isinstance(answer, pd.DataFrame)
    assert list(answer.columns) == [
        "forecast", "quantile_0.1", "quantile_0.5", "quantile_0.9",
    ]  # fmt: skip
    values = answer.to_numpy()
    assert np.isfinite(values).all()
    assert (values[:, 1] <= values[:, 2]).all() and (values[:, 2] <= values[:, 3]).all()
    assert (values[:, 1] < values[:, 3]).all()  # a band, which need not hold the forecast:
    # a model that under-forecast in every backtest window has its band above it.
    outputs = model.signature().outputs.input_names()
    assert "quantile_0.9" in outputs
