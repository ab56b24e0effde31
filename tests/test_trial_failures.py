"""A trial whose learner raises is logged as a FAILED child run and the search goes on."""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
import pytest
from fixtures_local import make_request
from flaml.automl import AutoML
from flaml.automl.time_series import ARIMA  # type: ignore[attr-defined]

from automl_service.engines.local.datasets import load_table
from automl_service.engines.local.guarded import guard_learners, guarded
from automl_service.engines.local.horizon import ForecastGrid
from automl_service.engines.local.search import FlamlMetric
from automl_service.engines.local.trials import ERROR_TAG, Objective, TrialLog
from automl_service.metrics import Goal
from automl_service.runs import RunStatus
from automl_service.settings import LocalSettings

pytest_plugins = ["fixtures_local"]

NRMSE = "normalized_root_mean_squared_error"
MESSAGE = "A constant trend was included in the model specification (on purpose)"


class Broken(ARIMA):
    """ARIMA that raises in fit, as statsmodels does for some specifications."""

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(MESSAGE)


@pytest.mark.slow
def test_a_raising_learner_leaves_a_failed_run_and_the_search_goes_on(
    local_settings: LocalSettings,
) -> None:
    """Trials of a learner that raises become FAILED child runs carrying the error, while the
    other learner's trials finish and one of them leads with a model."""
    uri = local_settings.mlflow_uri
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("failures")
    parent = client.create_run(experiment).info.run_id
    log = TrialLog(client, experiment, parent, "fail", 1, [Objective(NRMSE, Goal.MINIMIZE)])
    request = make_request("forecasting")
    series = load_table("sample:co2")
    train, holdout = series.iloc[:-12], series.iloc[-12:]
    grid = ForecastGrid("date", "MS", pd.Timestamp(train["date"].iloc[-1]), 12)
    automl = AutoML()  # type: ignore[no-untyped-call]
    metric = FlamlMetric(request, log, automl, ["date"], grid=grid)
    guard_learners(automl, "ts_forecast", ["lassolars"])
    automl.add_learner("broken", guarded(Broken))  # type: ignore[no-untyped-call]
    automl.fit(
        X_train=train[["date"]],
        y_train=train["co2"],
        X_val=holdout[["date"]],
        y_val=holdout["co2"],
        task="ts_forecast",
        period=12,
        time_col="date",
        estimator_list=["broken", "lassolars"],
        metric=metric,
        time_budget=5,
        max_iter=6,
        mlflow_logging=False,
        verbose=0,
        retrain_full=False,
    )

    failed = [r for r in log.records if r.status == RunStatus.FAILED]
    finished = [r for r in log.records if r.status == RunStatus.FINISHED]
    assert failed and finished
    assert all(r.algorithm == "broken" for r in failed)
    assert all(r.algorithm == "LassoLars" for r in finished)
    stored = client.get_run(failed[0].run_id)
    assert stored.info.status == "FAILED"
    assert MESSAGE in stored.data.tags[ERROR_TAG]
    assert stored.data.params["learner"] == "broken" and not stored.data.metrics
    [(leader, model)] = log.winners()
    assert leader.algorithm == "LassoLars" and model is not None
    assert type(model.estimator).__name__ == "LassoLars_TS"  # saved unguarded
