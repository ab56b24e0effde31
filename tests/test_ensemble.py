"""The VotingEnsemble: greedy weights on validation predictions, the blended pyfunc model,
and the trials it may draw from."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from automl_service.engines.local.ensemble import EnsembleModel, blend, choose_weights
from automl_service.engines.local.model import FlamlModel
from automl_service.engines.local.predictions import Fold
from automl_service.engines.local.trials import Objective, TrialLog
from automl_service.metrics import Goal

if TYPE_CHECKING:
    from fixtures_mlflow_store import MlflowStore

pytest_plugins = ["fixtures_mlflow_store"]


def mse(fold: Fold) -> float:
    return float(np.mean((fold.y_true - fold.y_pred) ** 2))


def test_probabilities_are_averaged_and_the_likeliest_class_wins() -> None:
    """Weights 3:1 average the probability columns; each row gets the class of the
    largest blended probability, in the members' label type."""
    classes = ["a", "b", "c"]
    y = np.array(["a", "b", "c"])
    first = Fold(y, np.array(["a", "a", "c"]), np.array([[0.6, 0.4, 0.0], [0.5, 0.4, 0.1],
                                                        [0.0, 0.2, 0.8]]), classes)  # fmt: skip
    second = Fold(y, np.array(["b", "b", "b"]), np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0],
                                                         [0.0, 1.0, 0.0]]), classes)  # fmt: skip
    mixed = blend([first, second], [3, 1])
    assert mixed.proba is not None
    assert mixed.proba[0] == pytest.approx([0.45, 0.55, 0.0])
    assert mixed.y_pred.tolist() == ["b", "b", "c"]
    assert mixed.classes == classes


def test_values_are_averaged_by_weight() -> None:
    y = np.zeros(2)
    mixed = blend([Fold(y, np.array([1.0, 3.0])), Fold(y, np.array([5.0, 7.0]))], [1, 3])
    assert mixed.y_pred.tolist() == [4.0, 6.0]


def test_members_that_err_on_different_rows_are_mixed() -> None:
    """Two models wrong on opposite halves: their even mix halves the squared error, and
    the greedy search finds exactly that mix."""
    y = np.zeros(10)
    left = Fold(y, np.array([1.0] * 5 + [0.0] * 5))
    right = Fold(y, np.array([0.0] * 5 + [1.0] * 5))
    counts = choose_weights([left, right], mse)
    assert counts == [1, 1]
    assert mse(blend([left, right], counts)) == pytest.approx(0.25)


def test_a_sharper_weight_is_found_by_picking_a_member_again() -> None:
    """A good and a weaker model: the best mix leans on the good one (picked again and
    again), which no even mix would find."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    good = Fold(y, y + rng.normal(scale=0.5, size=200))
    weak = Fold(y, y + rng.normal(scale=1.0, size=200))
    counts = choose_weights([good, weak], mse)
    assert counts is not None and counts[0] > counts[1] > 0
    assert mse(blend([good, weak], counts)) < mse(good)


def test_no_ensemble_when_no_mix_beats_the_best_member() -> None:
    """A perfect member cannot be improved on; predictions of other rows cannot be mixed."""
    y = np.arange(4.0)
    perfect, poor = Fold(y, y.copy()), Fold(y, y + 1.0)
    assert choose_weights([perfect, poor], mse) is None
    other_rows = Fold(np.arange(5.0), np.arange(5.0) + 0.5)
    assert choose_weights([poor, other_rows], mse) is None
    assert choose_weights([poor], mse) is None


def test_trial_log_keeps_each_algorithms_best(mlflow_store: MlflowStore) -> None:
    """Only each algorithm's best trial is kept (best first, at most keep_top of them, the
    earlier on ties); a trial that does not get in never builds its model."""
    client = mlflow_store.client
    parent = client.create_run(mlflow_store.experiment_id).info.run_id
    trials = TrialLog(
        client, mlflow_store.experiment_id, parent, f"job-{uuid.uuid4().hex[:6]}", 1,
        [Objective("accuracy", Goal.MAXIMIZE)], keep_top=2,
    )  # fmt: skip
    built: list[str] = []

    def trial(algorithm: str, accuracy: float, predictions: Any = "p") -> str:
        name = f"{algorithm}-{accuracy}"

        def factory() -> str:
            built.append(name)
            return name

        trials.log(algorithm, {}, {"accuracy": accuracy}, factory, predictions=predictions)
        return name

    trial("LightGBM", 0.80)
    trial("LightGBM", 0.90)
    trial("LightGBM", 0.90)  # a tie: the earlier stays
    trial("RandomForest", 0.85)
    trial("LogisticRegression", 0.70)  # third algorithm, worse than both kept
    trial("ExtremeRandomTrees", 0.95, predictions=None)  # no predictions: not a candidate
    assert [c.model for c in trials.top] == ["LightGBM-0.9", "RandomForest-0.85"]
    assert "LogisticRegression-0.7" not in built
    assert len(trials.records) == 6


@pytest.mark.slow
def test_blended_model_predicts_labels_from_averaged_probabilities() -> None:
    """Two real FLAML models on iris with string labels: the ensemble answers, row by
    row, the label of the largest weighted mean probability, and those probabilities."""
    from flaml.automl import AutoML
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    X = data.data
    y = pd.Series(np.array(["setosa", "versicolor", "virginica"])[data.target])
    models = []
    for learner in ("lgbm", "rf"):
        automl: Any = AutoML()  # type: ignore[no-untyped-call]
        automl.fit(X, y, task="classification", estimator_list=[learner], max_iter=2,
                   time_budget=10, verbose=0, mlflow_logging=False, seed=1)  # fmt: skip
        models.append(
            FlamlModel(
                automl.model,
                automl._state.task,
                automl._transformer,
                automl._label_transformer,
                list(X.columns),
            )
        )
    ensemble = EnsembleModel(models, [2, 1], classify=True)
    rows = X.iloc[::7]
    probas = [m.predict_proba(rows)[0] for m in models]
    mean = (2 * probas[0] + probas[1]) / 3
    expected = np.array(["setosa", "versicolor", "virginica"])[mean.argmax(axis=1)]
    answer = ensemble.predict(None, rows)
    assert answer["prediction"].tolist() == expected.tolist()
    assert answer[["proba_setosa", "proba_versicolor", "proba_virginica"]].to_numpy() == (
        pytest.approx(mean)
    )
    assert set(ensemble.predict(None, X)["prediction"]) <= {"setosa", "versicolor", "virginica"}
