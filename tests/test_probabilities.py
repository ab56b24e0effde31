"""Class probabilities: the classifiers' answer table, and the scoring endpoint's
``probabilities`` for a real VotingEnsemble over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from fixtures_models import IRIS_CLASSES, fitted_flaml, flaml_model, iris_named, register_pyfunc
from flaml.automl.model import LGBMEstimator

from automl_service.backends import build_scoring_server
from automl_service.engines.local.deployer import LocalDeployer
from automl_service.engines.local.ensemble import EnsembleModel
from automl_service.engines.local.model import log_pyfunc
from automl_service.engines.local.probabilities import decide, labelled, split_output
from automl_service.engines.local.serving import answer_json
from automl_service.request import AutoMLRequest
from automl_service.settings import LocalSettings

if TYPE_CHECKING:
    from fixtures_mlflow_store import MlflowStore

pytest_plugins = ["fixtures_local", "fixtures_mlflow_store"]


def test_labels_are_the_likeliest_class_unless_a_threshold_is_given() -> None:
    """Without a threshold the argmax wins; with one, two classes follow the positive
    (second) class's probability, and more classes ignore it."""
    proba = np.array([[0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])
    classes = np.array(["no", "yes"])
    assert decide(proba, classes, None).tolist() == ["no", "yes", "yes"]
    assert decide(proba, classes, 0.25).tolist() == ["yes", "yes", "yes"]
    assert decide(proba, classes, 0.7).tolist() == ["no", "no", "yes"]
    three = np.array([[0.5, 0.3, 0.2]])
    assert decide(three, np.array([0, 1, 2]), 0.1).tolist() == [0]


def test_answers_split_into_labels_and_probabilities_by_class() -> None:
    """A classifier's table gives labels and per-class objects; a label-only output (a
    model registered before probabilities) gives labels alone."""
    table = labelled(np.array(["no", "yes"]), np.array([[0.8, 0.2], [0.1, 0.9]]), ["no", "yes"])
    assert list(table.columns) == ["prediction", "proba_no", "proba_yes"]
    assert answer_json(table) == {
        "predictions": ["no", "yes"],
        "probabilities": [{"no": 0.8, "yes": 0.2}, {"no": 0.1, "yes": 0.9}],
    }
    assert answer_json(np.array([1, 0])) == {"predictions": [1, 0]}
    values = pd.DataFrame({"yhat": [1.5]})
    assert split_output(values)[1] is None
    assert answer_json(values) == {"predictions": [{"yhat": 1.5}]}


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with opener.open(request, timeout=60) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:  # a 4xx or 5xx, with its JSON error
        return int(exc.code), json.loads(exc.read())


@pytest.mark.slow
def test_a_deployed_multiclass_ensemble_answers_probabilities_over_http(
    local_settings: LocalSettings, tmp_path: Path
) -> None:
    """A VotingEnsemble of two real FLAML models on iris, registered and deployed, answers
    each row with one probability per species summing to 1, its label the likeliest."""
    X, y = iris_named()
    members = [flaml_model(X, y, learner) for learner in ("lgbm", "rf")]
    ensemble = EnsembleModel(members, [2, 1], classify=True)
    version = register_pyfunc(local_settings, ensemble, "iris-ensemble", "ens-1")
    request = AutoMLRequest.model_validate(
        {
            "request_id": "ens-1",
            "task": "classification",
            "training_data": "sample:iris",
            "target_column_name": "target",
            "registration": {"model_name": "iris-ensemble"},
            "deployment": {"endpoint_name": "iris-proba"},
        }
    )
    LocalDeployer(local_settings).deploy(request, version, 0.9)

    rows = X.iloc[::5]
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
    with build_scoring_server(local_settings, port=0) as server:
        status, answer = post(f"{server.url}/endpoints/iris-proba/score", body)
    assert status == 200, answer
    labels, probabilities = answer["predictions"], answer["probabilities"]
    assert len(labels) == len(probabilities) == len(rows)
    for label, row in zip(labels, probabilities, strict=True):
        assert set(row) == set(IRIS_CLASSES)
        assert sum(row.values()) == pytest.approx(1.0)
        assert label == max(row, key=row.__getitem__)
    assert np.mean(np.array(labels) == y.iloc[::5].to_numpy()) > 0.9
    # The weighted mean of the members' own probabilities, column by column.
    mean = (2 * members[0].predict_proba(rows)[0] + members[1].predict_proba(rows)[0]) / 3
    got = np.array([[row[c] for c in IRIS_CLASSES] for row in probabilities])
    assert got == pytest.approx(mean, abs=1e-9)


@pytest.mark.slow
def test_models_saved_before_thresholds_existed_still_score(mlflow_store: MlflowStore) -> None:
    """A FLAML model and an ensemble pickled without ``decision_threshold`` (as every
    model logged before it) load back and answer the likeliest label with probabilities."""
    X, y = iris_named()
    member = flaml_model(X, y, "lgbm", budget=1.0)
    ensemble = EnsembleModel([member], [1], classify=True)
    mlflow.set_tracking_uri(mlflow_store.uri)
    for model in (member, ensemble):
        del model.decision_threshold
        run_id = mlflow_store.client.create_run(mlflow_store.experiment_id).info.run_id
        log_pyfunc(mlflow_store.uri, run_id, model)
        answer: Any = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(X.head(20))
        proba = answer[[f"proba_{c}" for c in IRIS_CLASSES]].to_numpy()
        assert answer["prediction"].tolist() == IRIS_CLASSES[proba.argmax(axis=1)].tolist()
        assert proba.sum(axis=1) == pytest.approx(np.ones(20))


def test_a_deployed_flaml_model_of_numbers_answers_as_its_pyfunc_over_http(
    local_settings: LocalSettings,
) -> None:
    """A LightGBM FLAML model on iris, registered and deployed: a running server answers
    exactly what its pyfunc ``predict`` answers, probabilities summing to 1; a text value
    in a number column gets a 400 naming the value; and a newer model deployed while the server
    runs answers the very next call."""
    X, y = iris_named()
    first = fitted_flaml(X, y, LGBMEstimator)
    version = register_pyfunc(local_settings, first, "iris-numbers", "num-1")
    deployer = LocalDeployer(local_settings)
    request = AutoMLRequest.model_validate(
        {
            "request_id": "num-1",
            "task": "classification",
            "training_data": "sample:iris",
            "target_column_name": "target",
            "registration": {"model_name": "iris-numbers"},
            "deployment": {"endpoint_name": "iris-numbers"},
        }
    )
    deployer.deploy(request, version, 0.9)
    rows = X.iloc[::7]
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
    pyfunc = mlflow.pyfunc.load_model(f"models:/iris-numbers/{version.version}")
    with build_scoring_server(local_settings, port=0) as server:
        url = f"{server.url}/endpoints/iris-numbers/score"
        status, answer = post(url, body)
        assert status == 200, answer
        assert answer == {**answer_json(pyfunc.predict(rows)), "deployment": "iris-numbers-v1"}
        for row in answer["probabilities"]:
            assert set(row) == set(IRIS_CLASSES) and sum(row.values()) == pytest.approx(1.0)

        mistyped = rows.astype(object)
        mistyped.iloc[0, 1] = "wide"
        status, refused = post(url, {"dataframe_split": mistyped.to_dict(orient="split")})
        assert status == 400 and "'wide'" in refused["error"]
        assert refused["mistyped_columns"] == [str(rows.columns[1])]
        assert f"column '{rows.columns[1]}' needs numbers; row 1 has 'wide'" in refused["error"]

        two = pd.Series(np.where(y == "setosa", "setosa", "other"))
        second = fitted_flaml(X, two, LGBMEstimator)
        newer = register_pyfunc(local_settings, second, "iris-numbers", "num-2")
        deployer.deploy(request.model_copy(update={"request_id": "num-2"}), newer, 0.9)
        status, answer = post(url, body)
        assert status == 200 and answer["deployment"] == f"iris-numbers-v{newer.version}"
        assert set(answer["probabilities"][0]) == {"other", "setosa"}
