"""The forecasting VotingEnsemble: weights on the backtest windows, kept only when it beats
the best single candidate there, and the blended models answering for the dates asked."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from automl_service.engines.local.backtest import aggregate
from automl_service.engines.local.forecast_ensemble import (
    add_forecast_ensemble,
    plan_ensemble,
    weights_on,
)
from automl_service.engines.local.forecasters import BaselineForecaster, EnsembleForecaster
from automl_service.engines.local.horizon import ForecastGrid, OutsideHorizon
from automl_service.engines.local.intervals import with_intervals
from automl_service.engines.local.panel_forecasters import PanelBaseline, PanelEnsemble
from automl_service.engines.local.predictions import Backtest, Fold
from automl_service.engines.local.trials import Objective, TrialLog
from automl_service.metrics import Goal, Task

if TYPE_CHECKING:
    from fixtures_mlflow_store import MlflowStore

pytest_plugins = ["fixtures_mlflow_store"]

NRMSE = "normalized_root_mean_squared_error"


def mse(fold: Fold) -> float:
    return float(np.mean((fold.y_true - fold.y_pred) ** 2))


def windows(truth: list[list[float]], errors: list[list[float]]) -> tuple[Fold, ...]:
    """A candidate's forecasts of each window: the truth plus its errors there."""
    return tuple(
        Fold(np.asarray(t, dtype=float), np.asarray(t, dtype=float) + np.asarray(e))
        for t, e in zip(truth, errors, strict=True)
    )


TRUTH = [[10.0, 11.0, 12.0, 13.0]] * 3


def test_a_blend_of_models_erring_opposite_ways_is_kept() -> None:
    """One model over-forecasts, the other under-forecasts by as much in every window: the
    even blend is exact, with weights chosen on the other windows too, so it is kept."""
    high = windows(TRUTH, [[1.0] * 4] * 3)
    low = windows(TRUTH, [[-1.0] * 4] * 3)
    plan = plan_ensemble([high, low], mse)
    assert plan is not None
    assert plan.counts == [1, 1]
    assert [mse(f) for f in plan.folds] == [0.0, 0.0, 0.0]


def test_no_ensemble_when_the_best_single_model_is_not_beaten() -> None:
    """A perfect model cannot be beaten; and a blend whose weights fit some windows but
    fail on the window left out is not kept, though a blend weighed on every window would
    look better there."""
    perfect = windows(TRUTH, [[0.0] * 4] * 3)
    poor = windows(TRUTH, [[2.0] * 4] * 3)
    assert plan_ensemble([perfect, poor], mse) is None
    # a errs +1 in every window; b -1 in windows 0 and 1 but +3 in window 2. Weights
    # chosen on all three windows blend them, yet weights chosen on two windows miss the
    # third: scored on windows it was not weighed on, the blend loses to a alone.
    a = windows(TRUTH, [[1.0] * 4] * 3)
    b = windows(TRUTH, [[-1.0] * 4, [-1.0] * 4, [3.0] * 4])
    assert weights_on([a, b], [0, 1, 2], mse) is not None
    assert plan_ensemble([a, b], mse) is None


def test_a_candidate_of_other_rows_is_not_blended() -> None:
    other = windows([[1.0, 2.0, 3.0, 4.0]] * 3, [[1.0] * 4] * 3)
    assert plan_ensemble([windows(TRUTH, [[1.0] * 4] * 3), other], mse) is None


def test_the_ensemble_is_a_child_run_only_when_it_wins(mlflow_store: MlflowStore) -> None:
    """Logged from the log's kept candidates: a VotingEnsemble run with its members and
    weights when it beats the best; nothing when it does not."""
    client = mlflow_store.client
    grid = ForecastGrid("date", "MS", pd.Timestamp("2020-12-01"), horizon=4)

    def trial_log() -> TrialLog:
        parent = client.create_run(mlflow_store.experiment_id).info.run_id
        return TrialLog(client, mlflow_store.experiment_id, parent,
                        f"job-{uuid.uuid4().hex[:6]}", 1,
                        [Objective(NRMSE, Goal.MINIMIZE)], keep_top=5)  # fmt: skip

    def candidate(log: TrialLog, name: str, level: float, folds: tuple[Fold, ...]) -> None:
        model = BaselineForecaster("Naive", np.array([level]), grid, 1)
        scores = aggregate([f.metrics(Task.FORECASTING) for f in folds])
        log.log(name, {}, scores, lambda: model, predictions=Backtest(list(folds)))

    def build(members: list[Any], weights: list[float]) -> EnsembleForecaster:
        return EnsembleForecaster(members, weights, grid)

    log = trial_log()
    candidate(log, "Naive", 14.0, windows(TRUTH, [[1.0, 2.0, 1.0, 2.0]] * 3))
    candidate(log, "Average", 10.0, windows(TRUTH, [[-1.0, -2.0, -1.0, -2.0]] * 3))
    record = add_forecast_ensemble(log, [4, 4, 4], build, [0.1, 0.9])
    assert record is not None and record.algorithm == "VotingEnsemble"
    assert record.metrics[NRMSE] == pytest.approx(0.0)
    assert record.params["ensembled_algorithms"] == '["Naive", "Average"]'
    winner, model = log.winners()[0]
    assert winner.run_id == record.run_id
    assert model.predict(None, pd.DataFrame({"date": ["2021-01-01"]}))["forecast"].tolist() == [
        12.0
    ]

    log = trial_log()
    candidate(log, "Naive", 14.0, windows(TRUTH, [[0.0] * 4] * 3))
    candidate(log, "Average", 10.0, windows(TRUTH, [[-1.0] * 4] * 3))
    assert add_forecast_ensemble(log, [4, 4, 4], build, None) is None
    assert [r.algorithm for r in log.records] == ["Naive", "Average"]


def test_the_ensemble_forecasts_the_dates_asked_with_its_own_quantiles() -> None:
    """Rows as ISO strings, in any order: each gets the weighted mean of its members'
    forecasts for its date; a date outside the horizon is refused naming it; the signature
    lists the time column and the quantile columns."""
    grid = ForecastGrid("date", "MS", pd.Timestamp("2020-12-01"), horizon=3)
    naive = BaselineForecaster("Naive", np.array([1.0, 2.0, 3.0, 4.0]), grid, 1)
    seasonal = BaselineForecaster("SeasonalNaive", np.array([1.0, 2.0, 3.0, 4.0]), grid, 2)
    model = EnsembleForecaster([naive, seasonal], [3.0, 1.0], grid)
    rows = pd.DataFrame({"date": ["2021-03-01", "2021-01-01"]})
    # Naive: 4, 4, 4; SeasonalNaive: 3, 4, 3.
    assert model.predict(None, rows).tolist() == pytest.approx([3.75, 3.75])
    assert model.predict(None, pd.DataFrame({"date": ["2021-02-01"]})).tolist() == [4.0]
    with pytest.raises(OutsideHorizon, match="'2021-04-01' is beyond the forecast horizon"):
        model.predict(None, pd.DataFrame({"date": ["2021-04-01"]}))
    with_intervals(model, [0.1, 0.9], [Fold(np.array([1.0, 2.0]), np.array([1.5, 1.5]))], [2])
    answer = model.predict(None, rows)
    assert list(answer.columns) == ["forecast", "quantile_0.1", "quantile_0.9"]
    assert (answer["quantile_0.1"] < answer["quantile_0.9"]).all()
    signature = model.signature()
    assert signature.inputs.input_names() == ["date"]
    assert "quantile_0.9" in signature.outputs.input_names()


def test_a_many_series_ensemble_answers_each_row_for_its_series() -> None:
    grid: dict[str, Any] = {
        "time_column": "month",
        "id_columns": ("store",),
        "freq": "MS",
        "horizon": 2,
        "ends": {("a",): pd.Timestamp("2020-12-01"), ("b",): pd.Timestamp("2020-11-01")},
    }
    histories: dict[tuple[str, ...], Any] = {
        ("a",): np.array([1.0, 3.0]),
        ("b",): np.array([10.0, 30.0]),
    }
    naive = PanelBaseline("Naive", histories, 1, **grid)
    average = PanelBaseline("Average", histories, 1, **grid)
    model = PanelEnsemble([naive, average], [1.0, 1.0], **grid)
    rows = pd.DataFrame({"store": ["b", "a"], "month": ["2020-12-01", "2021-02-01"]})
    assert model.predict(None, rows).tolist() == [25.0, 2.5]
    with pytest.raises(OutsideHorizon, match="series store='c' is not one"):
        model.predict(None, pd.DataFrame({"store": ["c"], "month": ["2021-01-01"]}))
    assert model.signature().inputs.input_names() == ["store", "month"]


@pytest.mark.slow
def test_a_real_search_registers_an_ensemble_that_forecasts_iso_dates(tmp_path: Path) -> None:
    """On co2 (baselines and LightGBM on lags) the blend beats every single model on the
    windows: it is a child run, leads, and its logged MLflow model answers ISO date
    strings with its quantiles, carrying a signature."""
    import mlflow
    from mlflow import MlflowClient

    from automl_service.engines.local.model import log_pyfunc
    from automl_service.engines.local.search import search
    from automl_service.request import AutoMLRequest

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("fe", artifact_location=(tmp_path / "a").as_uri())
    parent = client.create_run(experiment).info.run_id
    request = AutoMLRequest.model_validate(
        {
            "task": "forecasting",
            "training_data": "sample:co2",
            "target_column_name": "co2",
            "forecasting": {"time_column_name": "date", "forecast_horizon": 12,
                            "forecast_quantiles": [0.1, 0.9]},
            "training": {"allowed_algorithms": ["Naive", "SeasonalNaive",
                                                "ExponentialSmoothing", "LightGBM"]},
            "limits": {"timeout_seconds": 20, "max_trials": 1},
        }
    )  # fmt: skip
    objective = [Objective(NRMSE, Goal.MINIMIZE)]
    log = TrialLog(client, experiment, parent, "fe", 1, objective, keep_top=5)
    ((leader, model),) = search(request, log)

    assert leader.algorithm == "VotingEnsemble"
    singles = [r for r in log.records if r.algorithm != "VotingEnsemble" and r.metrics]
    assert leader.metrics[NRMSE] < min(r.metrics[NRMSE] for r in singles)
    assert "lags" in {r.params.get("model") for r in singles}
    log_pyfunc(uri, leader.run_id, model)
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.pyfunc.load_model(f"runs:/{leader.run_id}/model")
    assert loaded.metadata.get_input_schema().input_names() == ["date"]
    answer = loaded.predict(pd.DataFrame({"date": ["2002-03-01", "2002-01-01"]}))
    assert list(answer.columns) == ["forecast", "quantile_0.1", "quantile_0.9"]
    assert 360 < answer["forecast"].iloc[0] < 380
    assert (answer["quantile_0.1"] < answer["quantile_0.9"]).all()


def test_no_ensemble_and_one_lag_model_when_no_time_is_left(mlflow_store: MlflowStore) -> None:
    """With the time limit spent, the ensemble is skipped (nothing logged) and the lag
    models stop after LightGBM's defaults, which always run."""
    from automl_service.engines.local.backtest import plan_windows
    from automl_service.engines.local.budget import Budget
    from automl_service.engines.local.forecast_ensemble import ensemble_within
    from automl_service.engines.local.lag_models import search_lag_models
    from automl_service.engines.local.panel import Panel, Series
    from automl_service.request import AutoMLRequest

    client = mlflow_store.client
    parent = client.create_run(mlflow_store.experiment_id).info.run_id
    log = TrialLog(client, mlflow_store.experiment_id, parent, f"job-{uuid.uuid4().hex[:6]}",
                   1, [Objective(NRMSE, Goal.MINIMIZE)], keep_top=5)  # fmt: skip
    spent = Budget(10, started_at=0.0, clock=lambda: 100.0)
    request = AutoMLRequest.model_validate(
        {"task": "forecasting", "training_data": "sample:co2", "target_column_name": "co2",
         "forecasting": {"time_column_name": "date", "forecast_horizon": 3}}
    )  # fmt: skip
    assert ensemble_within(request, log, [3], lambda m, w: None, spent) is None
    times = pd.date_range("2020-01-01", periods=40, freq="MS")
    panel = Panel((), (Series((), times, np.sin(np.arange(40.0)) + 5.0),))
    tried = search_lag_models(
        log, panel, plan_windows(40, 3), lags=4, horizon=3, kind="lags", params={},
        final=lambda fitted, lags: fitted, quantiles=None, budget=spent,
    )  # fmt: skip
    assert tried == 1
    assert [r.params["config"] for r in log.records] == ["defaults"]
