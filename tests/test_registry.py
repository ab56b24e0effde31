"""MlflowRegistry against a real SQLite MLflow store and real sklearn models."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import mlflow.pyfunc
import pandas as pd
import pytest

from automl_service.engines.base import Registry
from automl_service.engines.local.registry import MlflowRegistry
from automl_service.errors import PermanentError
from automl_service.metrics import Goal
from automl_service.request import AutoMLRequest
from automl_service.runs import RunRecord, RunStatus
from automl_service.selection import Selection, select_best
from automl_service.tags import (
    DATA_TAG,
    JOB_TAG,
    METRIC_TAG,
    METRIC_VALUE_TAG,
    REQUEST_TAG,
    RUN_TAG,
)

if TYPE_CHECKING:
    from fixtures_mlflow_store import MlflowStore

pytest_plugins = ["fixtures_mlflow_store"]


def make_request(**registration: object) -> AutoMLRequest:
    unique = uuid.uuid4().hex[:8]
    return AutoMLRequest.model_validate(
        {
            "request_id": f"req-{unique}",
            "task": "classification",
            "training_data": "data.csv",
            "target_column_name": "y",
            "registration": {"model_name": f"model-{unique}", **registration},
        }
    )


def winner(run_id: str, value: float = 0.9) -> Selection:
    return select_best(
        [RunRecord(run_id, RunStatus.FINISHED, {"accuracy": value})], "accuracy", Goal.MAXIMIZE
    )


def versions_of(store: MlflowStore, name: str) -> list[str]:
    return sorted(str(v.version) for v in store.client.search_model_versions(f"name = '{name}'"))


def test_register_tags_and_loads(mlflow_store: MlflowStore) -> None:
    """A registered version carries every lineage tag and its source loads and predicts."""
    registry: Registry = MlflowRegistry(mlflow_store.uri)
    run_id = mlflow_store.run_with_model()
    request = make_request(tags={"team": "risk"}).model_copy(
        update={"data_fingerprint": "sha256:" + "ab" * 16}
    )
    version = registry.register(request, winner(run_id, 0.875))
    assert version.created
    assert (version.name, version.version, version.run_id) == (request.model_name, "1", run_id)
    tags = mlflow_store.client.get_model_version(version.name, version.version).tags
    assert tags[REQUEST_TAG] == request.id
    assert tags[JOB_TAG] == request.job_name
    assert tags[RUN_TAG] == run_id
    assert tags[METRIC_TAG] == "accuracy"
    assert float(tags[METRIC_VALUE_TAG]) == 0.875
    assert tags["team"] == "risk"
    assert tags[DATA_TAG] == "sha256:" + "ab" * 16
    model = mlflow.pyfunc.load_model(version.source)
    assert list(model.predict(pd.DataFrame({"x": [0.0, 3.0]}))) == [0, 1]


def test_register_twice_gives_the_same_version(mlflow_store: MlflowStore) -> None:
    """Registering the same request again returns the existing version, created=False."""
    registry = MlflowRegistry(mlflow_store.uri)
    run_id = mlflow_store.run_with_model()
    request = make_request()
    assert registry.find(request) is None
    first = registry.register(request, winner(run_id))
    second = registry.register(request, winner(run_id))
    assert second.version == first.version
    assert not second.created
    assert registry.find(request) == second
    assert versions_of(mlflow_store, request.model_name) == [first.version]


def test_recovers_an_untagged_version(mlflow_store: MlflowStore) -> None:
    """A version of the winner's run left without tags (a crash between creating and
    tagging it) is tagged and returned instead of registering a second one."""
    registry = MlflowRegistry(mlflow_store.uri)
    run_id = mlflow_store.run_with_model()
    request = make_request()
    client = mlflow_store.client
    client.create_registered_model(request.model_name)
    run = client.get_run(run_id)
    orphan = client.create_model_version(
        request.model_name, f"{run.info.artifact_uri}/model", run_id=run_id
    )
    assert REQUEST_TAG not in orphan.tags
    version = registry.register(request, winner(run_id))
    assert (version.version, version.created) == (str(orphan.version), False)
    assert (
        client.get_model_version(request.model_name, orphan.version).tags[REQUEST_TAG] == request.id
    )
    assert versions_of(mlflow_store, request.model_name) == [str(orphan.version)]


def test_version_of_another_request_is_not_adopted(mlflow_store: MlflowStore) -> None:
    """A version of the same run already tagged for another request is left alone."""
    registry = MlflowRegistry(mlflow_store.uri)
    run_id = mlflow_store.run_with_model()
    first = make_request()
    second = AutoMLRequest.model_validate(
        {**first.model_dump(mode="json"), "request_id": first.id + "-b"}
    )
    one = registry.register(first, winner(run_id))
    two = registry.register(second, winner(run_id))
    assert two.created
    assert two.version != one.version
    assert registry.find(first) == registry.register(first, winner(run_id))


def test_registers_an_mlflow3_logged_model(mlflow_store: MlflowStore) -> None:
    """A run whose model is an MLflow 3 logged model named 'model' registers from it."""
    registry = MlflowRegistry(mlflow_store.uri)
    run_id = mlflow_store.run_with_model(logged_model=True)
    request = make_request()
    version = registry.register(request, winner(run_id))
    assert version.created
    assert version.run_id == run_id
    [logged] = mlflow_store.client.search_logged_models(
        [mlflow_store.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    assert version.source == logged.artifact_location
    model = mlflow.pyfunc.load_model(version.source)
    assert list(model.predict(pd.DataFrame({"x": [3.0]}))) == [1]


def test_missing_model_is_permanent(mlflow_store: MlflowStore) -> None:
    """A winner without a model raises PermanentError naming the run, registering nothing."""
    registry = MlflowRegistry(mlflow_store.uri)
    run_id = mlflow_store.run_without_model()
    request = make_request()
    with pytest.raises(PermanentError, match=run_id):
        registry.register(request, winner(run_id))
    assert versions_of(mlflow_store, request.model_name) == []
