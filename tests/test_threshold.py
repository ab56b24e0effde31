"""The decision threshold of binary classifiers: asked in the request, recorded with the
model (its run, its registered version, the model itself) and applied to its labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from fixtures_local import make_request, wait_terminal
from fixtures_models import breast_cancer, flaml_model, register_pyfunc
from mlflow.pyfunc.model import PythonModel

from automl_service.engines.base import JobState
from automl_service.engines.local import LocalEngine
from automl_service.engines.local.datasets import load_table
from automl_service.engines.local.model import log_pyfunc
from automl_service.engines.local.threshold import (
    THRESHOLD_TAG,
    check_two_classes,
    record_threshold,
    refuse_misplaced_threshold,
)
from automl_service.errors import InvalidRequest, PermanentError
from automl_service.request import AutoMLRequest, parse_request
from automl_service.runs import RunRecord, RunStatus
from automl_service.settings import LocalSettings

if TYPE_CHECKING:
    from fixtures_mlflow_store import MlflowStore

pytest_plugins = ["fixtures_local", "fixtures_mlflow_store"]


def request_with(threshold: float | None, **changes: Any) -> AutoMLRequest:
    body = {
        "task": "classification",
        "training_data": "sample:breast_cancer",
        "target_column_name": "target",
        "training": {"decision_threshold": threshold},
        **changes,
    }
    return AutoMLRequest.model_validate(body)


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2"])
def test_a_threshold_outside_zero_to_one_is_refused(value: str) -> None:
    """The threshold is a probability strictly between 0 and 1."""
    text = (
        '{"task": "classification", "training_data": "sample:iris", "target_column_name": "t",'
        f' "training": {{"decision_threshold": {value}}}}}'
    )
    with pytest.raises(InvalidRequest, match=r"training\.decision_threshold"):
        parse_request(text)


def test_a_threshold_needs_a_two_class_classification() -> None:
    """Regression, and a three-class target, are refused naming the field."""
    regression = request_with(0.3, task="regression", training_data="sample:diabetes")
    with pytest.raises(PermanentError, match="applies to classification, not regression"):
        refuse_misplaced_threshold(regression)
    with pytest.raises(PermanentError, match="needs two classes; the target 'target' has 3"):
        check_two_classes(request_with(0.3, training_data="sample:iris"))
    check_two_classes(request_with(0.3))  # benign / malignant
    refuse_misplaced_threshold(request_with(None, task="regression"))


@pytest.mark.slow
def test_a_recorded_threshold_changes_the_labels_of_the_logged_model(
    mlflow_store: MlflowStore,
) -> None:
    """A real binary FLAML model given a threshold between its positive rows'
    probabilities: its run is tagged, and the model loaded back labels a row positive
    exactly when that class's probability reaches the threshold, turning some rows."""
    X, y = breast_cancer()
    model = flaml_model(X, y, "lgbm")
    before = model.predict(None, X)
    positive = before["proba_malignant"][before["prediction"] == "malignant"]
    threshold = float(np.median(positive))
    assert 0.5 < threshold < 1.0

    client = mlflow_store.client
    run_id = client.create_run(mlflow_store.experiment_id).info.run_id
    record = RunRecord(run_id, RunStatus.FINISHED, {"accuracy": 0.9})
    record_threshold(client, request_with(threshold), [(record, model)])
    log_pyfunc(mlflow_store.uri, run_id, model)
    assert client.get_run(run_id).data.tags[THRESHOLD_TAG] == repr(threshold)

    mlflow.set_tracking_uri(mlflow_store.uri)
    after: Any = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(X)
    expected = np.where(after["proba_malignant"] >= threshold, "malignant", "benign")
    assert after["prediction"].tolist() == expected.tolist()
    turned = (before["prediction"] == "malignant") & (after["prediction"] == "benign")
    assert 0 < int(turned.sum()) <= len(positive)
    assert after["proba_malignant"].to_numpy() == pytest.approx(before["proba_malignant"])


def test_the_registered_version_carries_the_threshold(local_settings: LocalSettings) -> None:
    """The model version is tagged with the request's threshold; without one, untagged."""

    class Constant(PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return np.zeros(len(model_input))

    uri = local_settings.mlflow_uri
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    with_threshold = register_pyfunc(
        local_settings, Constant(), "m", "with", training={"decision_threshold": 0.25}
    )
    without = register_pyfunc(local_settings, Constant(), "m", "without")
    assert client.get_model_version("m", with_threshold.version).tags[THRESHOLD_TAG] == "0.25"
    assert THRESHOLD_TAG not in client.get_model_version("m", without.version).tags


@pytest.mark.slow
def test_a_trained_job_records_the_threshold_and_its_model_applies_it(
    engine: LocalEngine,
) -> None:
    """A real training job asked for a high threshold tags its best run with it, and that
    run's model labels a row 1 only at that probability or above, so rows between 0.5 and
    the threshold are 0; a regression asked for one is refused before anything is made."""
    request = make_request(
        "classification",
        request_id="t-threshold",
        limits={"timeout_seconds": 10, "max_trials": 4},
        training={"decision_threshold": 0.95, "enable_vote_ensemble": False},
    )
    engine.ensure_job(request)
    status = wait_terminal(engine, request.job_name)
    assert status.state is JobState.COMPLETED, status.error
    best = status.best_child_run_id
    assert best is not None
    client = mlflow.MlflowClient(tracking_uri=engine.settings.mlflow_uri)
    assert client.get_run(best).data.tags[THRESHOLD_TAG] == "0.95"

    mlflow.set_tracking_uri(engine.settings.mlflow_uri)
    features = load_table("sample:breast_cancer").drop(columns=["target"])
    # Blends of random pairs of rows: the model is unsure of many of them.
    rng = np.random.default_rng(0)
    left, right = (features.iloc[rng.integers(0, len(features), 1000)] for _ in range(2))
    alpha = rng.uniform(size=(1000, 1))
    blends = alpha * left.to_numpy() + (1 - alpha) * right.to_numpy()
    rows = pd.DataFrame(blends, columns=features.columns)
    answer: Any = mlflow.pyfunc.load_model(f"runs:/{best}/model").predict(rows)
    positive = answer["proba_1"]  # the target is 0/1: 1 is the positive class
    assert answer["prediction"].tolist() == np.where(positive >= 0.95, 1, 0).tolist()
    unsure = (positive >= 0.5) & (positive < 0.95)
    assert unsure.any() and (answer["prediction"][unsure] == 0).all()

    regression = make_request("regression", training={"decision_threshold": 0.5})
    with pytest.raises(PermanentError, match="applies to classification"):
        engine.ensure_job(regression)
