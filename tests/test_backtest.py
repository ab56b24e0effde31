"""Rolling-origin backtests: which windows a series gets, how their scores aggregate, and
that every forecasting candidate of a real search is scored on the same windows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from automl_service.engines.local.backtest import Window, aggregate, plan_windows
from automl_service.engines.local.datasets import load_sample
from automl_service.engines.local.evaluate import compute_metrics
from automl_service.engines.local.search import search
from automl_service.engines.local.trials import Objective, TrialLog
from automl_service.errors import PermanentError
from automl_service.metrics import Goal, Task
from automl_service.request import AutoMLRequest
from automl_service.runs import RunStatus

NRMSE = "normalized_root_mean_squared_error"


def test_three_windows_a_horizon_apart_by_default() -> None:
    """Window 0 is the last horizon; each next one ends where the one after it starts."""
    assert plan_windows(100, 8) == [Window(0, 92, 8), Window(1, 84, 8), Window(2, 76, 8)]
    assert plan_windows(100, 8, step=2) == [Window(0, 92, 8), Window(1, 90, 8), Window(2, 88, 8)]
    assert len(plan_windows(100, 8, windows=5)) == 5


def test_short_series_get_fewer_windows_and_too_short_ones_are_refused() -> None:
    """A series with room for fewer windows gets those (each earliest training part keeps
    horizon + 2 points); with room for none, or fewer than asked for, it is refused."""
    # 8 + 10 = 18 points is the least for one window of 8; each 8 more makes room for one more.
    assert [w.cutoff for w in plan_windows(18, 8)] == [10]
    assert [w.cutoff for w in plan_windows(26, 8)] == [18, 10]
    assert [w.cutoff for w in plan_windows(25, 8)] == [17]
    with pytest.raises(PermanentError, match="series has 17 points: too short to forecast 8"):
        plan_windows(17, 8)
    with pytest.raises(PermanentError, match=r"room for 2 backtest window\(s\) .* not the 4"):
        plan_windows(26, 8, windows=4)


def test_cv_step_size_sets_the_periods_between_window_origins() -> None:
    """With a step of 3 the windows' origins are 3 periods apart (the windows overlap when
    the step is shorter than the horizon); a step that leaves no room for the windows
    asked for, or for those a step of the horizon gives, is refused naming the field and
    the largest step that fits."""
    assert [w.cutoff for w in plan_windows(40, 8, step=3)] == [32, 29, 26]
    assert [w.cutoff for w in plan_windows(40, 8, windows=5, step=3)] == [32, 29, 26, 23, 20]
    # 40 points, horizon 8: the first cutoff may move back 40 - 8 - 10 = 22 periods.
    assert [w.cutoff for w in plan_windows(40, 8, step=11)] == [32, 21, 10]
    with pytest.raises(PermanentError) as caught:
        plan_windows(40, 8, step=12)
    assert str(caught.value) == (
        "forecasting.cv_step_size = 12 leaves room for 2 backtest window(s) of 8 in series "
        "(40 points), not 3; a step of at most 11 fits 3"
    )
    with pytest.raises(PermanentError, match=r"cv_step_size = 6 .* not 5; .* at most 5 fits 5"):
        plan_windows(40, 8, windows=5, step=6)
    # No step fits 24 windows in 22 periods: the series is too short, whatever the step.
    with pytest.raises(PermanentError, match="series has 40 points: room for 8 backtest"):
        plan_windows(40, 8, windows=24, step=3)


@pytest.mark.slow
def test_a_request_cv_step_size_moves_the_windows_of_every_candidate(tmp_path: Path) -> None:
    """``forecasting.cv_step_size`` reaches the local search: the Naive baseline is scored
    on windows ending 2 periods apart, and its run logs the step."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("step", artifact_location=(tmp_path / "a").as_uri())
    parent = client.create_run(experiment).info.run_id
    request = AutoMLRequest.model_validate(
        {
            "task": "forecasting",
            "training_data": "sample:macrodata",
            "target_column_name": "realgdp",
            "forecasting": {"time_column_name": "date", "forecast_horizon": 8, "cv_step_size": 2},
            "training": {"allowed_algorithms": ["Naive"]},
            "limits": {"timeout_seconds": 10},
        }
    )
    log = TrialLog(client, experiment, parent, "step", 1, [Objective(NRMSE, Goal.MINIMIZE)])
    search(request, log)
    [naive] = [r for r in log.records if r.status == RunStatus.FINISHED]
    assert naive.params["backtest_step"] == "2" and naive.params["backtest_windows"] == "3"
    y = load_sample("macrodata").sort_values("date")["realgdp"].to_numpy(dtype=float)
    for i in range(3):
        end = len(y) - 2 * i
        truth = y[end - 8 : end]
        expected = compute_metrics(Task.FORECASTING, truth, np.full(8, y[end - 9]))[NRMSE]
        assert naive.metrics[f"{NRMSE}_window_{i}"] == pytest.approx(expected), i


def test_metrics_are_the_mean_over_windows_and_each_window_is_kept() -> None:
    """The trial's metric is the mean of its windows; each window's value is kept under its
    own name; a metric missing from one window gets no mean."""
    out = aggregate([{NRMSE: 0.1, "r2_score": 0.5}, {NRMSE: 0.3}, {NRMSE: 0.8}])
    assert out[NRMSE] == pytest.approx(0.4)
    assert [out[f"{NRMSE}_window_{i}"] for i in range(3)] == [0.1, 0.3, 0.8]
    assert "r2_score" not in out and out["r2_score_window_0"] == 0.5


@pytest.mark.slow
def test_every_forecasting_candidate_is_scored_on_the_same_windows(tmp_path: Path) -> None:
    """Baselines and FLAML trials alike log each window's metrics and their mean as the
    trial's metric; the windows are the last three horizons of the series (the Naive
    baseline's scores are those of the last value before each window), and the best run
    is the best by the mean."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("bt", artifact_location=(tmp_path / "a").as_uri())
    parent = client.create_run(experiment).info.run_id
    request = AutoMLRequest.model_validate(
        {
            "task": "forecasting",
            "training_data": "sample:macrodata",
            "target_column_name": "realgdp",
            "forecasting": {"time_column_name": "date", "forecast_horizon": 8},
            "training": {"allowed_algorithms": ["LightGBM", "Naive", "ExponentialSmoothing"]},
            "limits": {"timeout_seconds": 10, "max_trials": 3},
        }
    )
    log = TrialLog(client, experiment, parent, "bt", 1, [Objective(NRMSE, Goal.MINIMIZE)])
    winners = search(request, log)

    finished = [r for r in log.records if r.status == RunStatus.FINISHED]
    assert {"Naive", "ExponentialSmoothing", "LightGBM"} <= {r.algorithm for r in finished}
    # LightGBM on the series' lags with its defaults is a candidate beside FLAML's trials.
    lags = [r for r in finished if r.params.get("model") == "lags"]
    assert lags[0].algorithm == "LightGBM" and lags[0].params["config"] == "defaults"
    assert lags[0].params["lags"] == "8"  # the horizon: longer than a season of 4
    assert any(r.params.get("learner") == "lgbm" for r in finished)
    for record in finished:
        windows = [record.metrics[f"{NRMSE}_window_{i}"] for i in range(3)]
        assert record.metrics[NRMSE] == pytest.approx(np.mean(windows)), record.algorithm
        assert f"{NRMSE}_window_3" not in record.metrics
        assert record.params["backtest_windows"] == "3"
        assert record.params["backtest_step"] == "8"
        logged = client.get_run(record.run_id).data.metrics
        assert logged[f"{NRMSE}_window_2"] == pytest.approx(windows[2])

    y = load_sample("macrodata").sort_values("date")["realgdp"].to_numpy(dtype=float)
    naive = next(r for r in finished if r.algorithm == "Naive")
    for i in range(3):
        end = len(y) - 8 * i
        truth = y[end - 8 : end]
        expected = compute_metrics(Task.FORECASTING, truth, np.full(8, y[end - 9]))[NRMSE]
        assert naive.metrics[f"{NRMSE}_window_{i}"] == pytest.approx(expected), i

    best = min(r.metrics[NRMSE] for r in finished if math.isfinite(r.metrics[NRMSE]))
    assert winners[0][0].metrics[NRMSE] == best
