"""Test rows: the winner is scored on rows it never saw, and the result says so. A real
worker, trainer, MLflow store and registry on the local backend."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fixtures_worker import iris_request, make_worker, mlflow_client

from automl_service.engines.local.datasets import load_table
from automl_service.engines.local.testset import score
from automl_service.metrics import Task
from automl_service.request import parse_request
from automl_service.results import RequestState
from automl_service.settings import Settings
from automl_service.tags import TEST_METRIC_VALUE_TAG
from automl_service.waiting import wait_for_results

pytestmark = pytest.mark.slow


def test_test_rows_score_the_winner_as_the_registered_model_scores_them(
    tmp_path: Path, settings: Settings
) -> None:
    table = load_table("sample:breast_cancer").sample(frac=1.0, random_state=3)
    train, test = table.iloc[:450], table.iloc[450:]
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    body = iris_request(
        "with-test",
        training_data=str(tmp_path / "train.csv"),
        validation={"test_data": str(tmp_path / "test.csv")},
        limits={"timeout_seconds": 10, "max_trials": 4},
    )
    worker = make_worker(settings)
    worker.queue.send(json.dumps(body))
    step = lambda: worker.run_once(threading.Event())  # noqa: E731
    result = wait_for_results(worker.results, ["with-test"], timeout=120, step=step)["with-test"]
    assert result.state is RequestState.SUCCEEDED, result.error
    assert {"accuracy", "AUC_weighted", "log_loss"} <= set(result.test_metrics)

    import mlflow

    uri = settings.local.mlflow_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{result.model_name}/{result.model_version}")
    rescored = score(
        model.predict,
        Task.CLASSIFICATION,
        test.drop(columns=["target"]),
        test["target"],
    )
    assert rescored["accuracy"] == pytest.approx(result.test_metrics["accuracy"])
    version = mlflow_client(uri).get_model_version(result.model_name, result.model_version)
    assert float(version.tags[TEST_METRIC_VALUE_TAG]) == pytest.approx(
        result.test_metrics["accuracy"]
    )


def test_a_test_fraction_is_held_out_and_forecasts_refuse_test_rows(
    settings: Settings,
) -> None:
    body = iris_request("held-out", validation={"test_data_size": 0.3},
                        limits={"timeout_seconds": 10, "max_trials": 3})  # fmt: skip
    forecast = {
        "request_id": "fc-test",
        "task": "forecasting",
        "training_data": "sample:co2",
        "target_column_name": "co2",
        "forecasting": {"time_column_name": "date", "forecast_horizon": 12},
        "validation": {"test_data_size": 0.2},
        "limits": {"timeout_seconds": 10, "max_trials": 2},
    }
    worker = make_worker(settings)
    for message in (body, forecast):
        worker.queue.send(json.dumps(message))
    step = lambda: worker.run_once(threading.Event())  # noqa: E731
    ended = wait_for_results(worker.results, ["held-out", "fc-test"], timeout=120, step=step)
    held_out = ended["held-out"]
    assert held_out.state is RequestState.SUCCEEDED and held_out.test_metrics["accuracy"] > 0.5
    refused = ended["fc-test"]
    assert refused.state is RequestState.FAILED
    assert "test rows are not scored locally for forecasting" in (refused.error or "")
    assert parse_request(json.dumps(body)).validation.test_data_size == 0.3
