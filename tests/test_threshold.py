"""The decision threshold of binary classifiers: asked in the request, recorded with the
model (its run, its registered version, the model itself) and applied to its labels."""

from __future__ import annotations

from pathlib import Path
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
    THRESHOLD_REASON_TAG,
    THRESHOLD_TAG,
    check_two_classes,
    record_threshold,
    refuse_misplaced_threshold,
)
from automl_service.engines.local.threshold_choice import METRICS, choose_threshold, metric_at
from automl_service.engines.local.trainer import run_attempt
from automl_service.errors import InvalidRequest, PermanentError
from automl_service.render import result_summary
from automl_service.report import render_report
from automl_service.request import AutoMLRequest, parse_request
from automl_service.results import RequestResult, RequestState
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
    status = wait_terminal(engine, request.job_name, request=request)
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


# A threshold chosen for a metric ---------------------------------------------------------


def imbalanced_scores() -> tuple[np.ndarray, np.ndarray]:
    """One positive in ten, whose probabilities a cautious model keeps mostly below 0.5."""
    rng = np.random.default_rng(1)
    positive = rng.uniform(size=2000) < 0.1
    score = np.clip(np.where(positive, 0.4, 0.15) + rng.normal(scale=0.12, size=2000), 0, 1)
    return positive, score


@pytest.mark.parametrize("metric", ["f1_score_binary", "balanced_accuracy", "norm_macro_recall"])
def test_the_chosen_threshold_maximizes_the_metric(metric: str) -> None:
    """On imbalanced scores the threshold is not 0.5, scores better than 0.5 does, and
    no threshold on a fine grid does better."""
    positive, score = imbalanced_scores()
    choice = choose_threshold(metric, positive, score)
    assert choice.threshold != 0.5 and 0.0 < choice.threshold < 1.0
    assert choice.value > choice.value_at_half + 0.1
    assert choice.value == pytest.approx(metric_at(metric, positive, score, choice.threshold))
    grid = np.linspace(0.01, 0.99, 197)
    assert choice.value >= max(metric_at(metric, positive, score, t) for t in grid) - 1e-12
    assert choice.rows == 2000
    assert f"to maximize {metric}" in choice.reason()


def test_counts_give_the_metrics_sklearn_gives() -> None:
    """Each supported metric from the counts equals scikit-learn's (or the service's)."""
    from automl_service.engines.local.evaluate import classification_metrics

    positive, score = imbalanced_scores()
    labels = (score >= 0.3).astype(int)
    truth = positive.astype(int)
    expected = classification_metrics(truth, labels)
    from sklearn.metrics import f1_score

    expected["f1_score_binary"] = float(f1_score(truth, labels))
    for metric in METRICS:
        assert metric_at(metric, positive, score, 0.3) == pytest.approx(expected[metric]), metric


def test_a_fixed_and_a_chosen_threshold_together_are_refused() -> None:
    """Both options at once, or a metric no threshold is chosen for, are refused naming
    the fields; a metric for regression or three classes fails before training."""
    both = (
        '{"task": "classification", "training_data": "sample:breast_cancer",'
        ' "target_column_name": "target", "training": {"decision_threshold": 0.3,'
        ' "decision_threshold_metric": "f1_score_binary"}}'
    )
    with pytest.raises(InvalidRequest, match=r"decision_threshold .*or decision_threshold_metric"):
        parse_request(both)
    with pytest.raises(InvalidRequest, match=r"training\.decision_threshold_metric"):
        parse_request(both.replace('"decision_threshold": 0.3, ', "").replace("f1_", "AUC_"))
    chosen = {"decision_threshold_metric": "f1_score_binary"}
    regression = AutoMLRequest.model_validate(
        {"task": "regression", "training_data": "sample:diabetes", "target_column_name": "t",
         "training": chosen}
    )  # fmt: skip
    with pytest.raises(PermanentError, match="decision_threshold_metric applies to classif"):
        refuse_misplaced_threshold(regression)
    iris = request_with(None, training_data="sample:iris", training=chosen)
    with pytest.raises(PermanentError, match="decision_threshold_metric needs two classes"):
        check_two_classes(iris)


def test_the_report_and_status_show_how_the_threshold_came_to_be() -> None:
    chosen = RequestResult(
        request_id="r",
        state=RequestState.SUCCEEDED,
        decision_threshold=0.23,
        decision_threshold_reason="chosen on 300 validation rows to maximize f1_score_binary",
    )
    expected = "0.23 (chosen on 300 validation rows to maximize f1_score_binary)"
    assert expected in render_report(chosen, [])
    assert expected in result_summary(chosen)
    fixed = chosen.model_copy(update={"decision_threshold_reason": None})
    assert "0.23 (set by the request)" in result_summary(fixed)
    assert "Decision threshold" not in render_report(
        chosen.model_copy(update={"decision_threshold": None}), []
    )


@pytest.mark.slow
def test_a_job_chooses_a_threshold_that_beats_one_half_on_its_validation_rows(
    mlflow_store: MlflowStore, tmp_path: Path
) -> None:
    """A real job on an imbalanced table scored on a validation table (its models are
    not refitted on it) asked to choose a threshold for f1_score_binary: the winner's run
    carries a threshold other than 0.5 and how it was chosen, and its logged model,
    answering the validation rows, has a higher F1 there than with 0.5."""
    from sklearn.datasets import make_classification
    from sklearn.metrics import f1_score

    X, y = make_classification(
        n_samples=1500, n_features=8, n_informative=4, weights=[0.9, 0.1], flip_y=0.05,
        class_sep=0.6, random_state=3,
    )  # fmt: skip
    table = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)]).assign(label=y)
    train, validation = tmp_path / "train.csv", tmp_path / "validation.csv"
    table.iloc[:1000].to_csv(train, index=False)
    table.iloc[1000:].to_csv(validation, index=False)
    request = AutoMLRequest.model_validate(
        {
            "request_id": "t-chosen",
            "task": "classification",
            "training_data": str(train),
            "target_column_name": "label",
            "limits": {"timeout_seconds": 10, "max_trials": 3},  # the search ends at 3 trials
            "training": {"decision_threshold_metric": "f1_score_binary"},
            "validation": {"validation_data": str(validation)},
        }
    )
    client = mlflow_store.client
    parent = client.create_run(mlflow_store.experiment_id).info.run_id
    best = run_attempt(client, mlflow_store.uri, mlflow_store.experiment_id, parent, request, 1)
    tags = client.get_run(best).data.tags
    threshold = float(tags[THRESHOLD_TAG])
    assert threshold != 0.5
    assert tags[THRESHOLD_REASON_TAG].startswith(
        "chosen on 500 validation rows to maximize f1_score_binary"
    )
    mlflow.set_tracking_uri(mlflow_store.uri)
    rows = table.iloc[1000:]
    answer: Any = mlflow.pyfunc.load_model(f"runs:/{best}/model").predict(
        rows.drop(columns="label")
    )
    assert answer["prediction"].tolist() == np.where(answer["proba_1"] >= threshold, 1, 0).tolist()
    at_half = (answer["proba_1"] >= 0.5).astype(int)
    assert f1_score(rows["label"], answer["prediction"]) > f1_score(rows["label"], at_half)


def test_the_registered_version_carries_a_chosen_threshold_and_how(
    local_settings: LocalSettings,
) -> None:
    """With a threshold chosen for a metric, the version takes the winner run's threshold
    and reason tags."""
    from automl_service.engines.local.registry import MlflowRegistry
    from automl_service.metrics import Goal
    from automl_service.selection import select_best

    class Constant(PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return np.zeros(len(model_input))

    uri = local_settings.mlflow_uri
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment(
        "chosen", artifact_location=local_settings.artifact_root.as_uri()
    )
    run_id = client.create_run(experiment_id).info.run_id
    log_pyfunc(uri, run_id, Constant())
    client.set_terminated(run_id, "FINISHED")
    tags = {THRESHOLD_TAG: "0.2375", THRESHOLD_REASON_TAG: "chosen on 9 validation rows"}
    winner = RunRecord(run_id, RunStatus.FINISHED, {"accuracy": 0.9}, tags)
    request = request_with(
        None,
        training={"decision_threshold_metric": "balanced_accuracy"},
        registration={"model_name": "chosen"},
    )
    version = MlflowRegistry(uri).register(
        request, select_best([winner], "accuracy", Goal.MAXIMIZE)
    )
    stored = client.get_model_version("chosen", version.version).tags
    assert stored[THRESHOLD_TAG] == "0.2375"
    assert stored[THRESHOLD_REASON_TAG] == "chosen on 9 validation rows"
