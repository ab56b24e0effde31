"""``predict`` on the azure backend: a model registered the way the service registers an
AutoML winner is resolved through the real SDK against the fake, its MLflow folder is
downloaded by the SDK's ``models.download`` from Azurite's blob service (the workspace's
artifact store) once, kept in the cache, and scored by the same streamed code as on the
local backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from azureml_fake.fixtures import Blobstore, backend_on_fake
from azureml_fake.server import FakeAzureML
from fixtures_models import iris_named
from fixtures_retry import FAST

from automl_service.engines.azure.model_files import AzureModelFiles
from automl_service.engines.base import Backend
from automl_service.engines.local.batch import predict_with
from automl_service.errors import InvalidRequest, PermanentError
from automl_service.metrics import Goal
from automl_service.request import parse_request
from automl_service.runs import RunRecord, RunStatus
from automl_service.selection import select_best
from automl_service.settings import AzureSettings
from automl_service.tags import alias_tag

pytest_plugins = ["azureml_fake.fixtures"]

RUN = "automl-iris-1_3"


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A real MLflow model folder (a scikit-learn classifier on iris) and the classifier."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X, y = iris_named()
    classifier = LogisticRegression(max_iter=1000).fit(X, y)
    folder = tmp_path_factory.mktemp("iris-model") / "mlflow-model"
    mlflow.sklearn.save_model(
        classifier, str(folder), signature=infer_signature(X, classifier.predict(X))
    )
    return folder, classifier


def upload_run_model(store: Blobstore, run_id: str, folder: Path) -> None:
    """The model's files where Azure AutoML leaves a child run's MLflow model: the run's
    ``outputs/mlflow-model`` in the artifact store."""
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = f"ExperimentRun/dcid.{run_id}/outputs/mlflow-model/{file.relative_to(folder)}"
        store.container.upload_blob(name, file.read_bytes(), overwrite=True)


def register_winner(backend: Backend, request_id: str, run_id: str) -> str:
    """Register ``run_id``'s model as the service does for a request's winner."""
    request = parse_request(
        json.dumps(
            {
                "request_id": request_id,
                "task": "classification",
                "training_data": "azureml:iris:1",
                "target_column_name": "species",
                "registration": {"model_name": "iris"},
            }
        )
    )
    runs = [RunRecord(run_id, RunStatus.FINISHED, {"accuracy": 0.97})]
    return backend.registry.register(request, select_best(runs, "accuracy", Goal.MAXIMIZE)).version


@pytest.fixture
def backend(
    fake_aml: FakeAzureML,
    workspace_artifactstore: Blobstore,
    azure_settings: AzureSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Backend:
    """The azure backend on the fake, built after the datastores (the cloud names
    Azurite), its model cache in ``tmp_path / "cache"``."""
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    return backend_on_fake(fake_aml, azure_settings, tmp_path / "staging", tmp_path / "cache")


def model_files(backend: Backend) -> AzureModelFiles:
    files = backend.model_files
    assert isinstance(files, AzureModelFiles)
    return files


def test_predict_downloads_a_registered_model_once_and_scores_like_the_model(
    backend: Backend,
    fake_aml: FakeAzureML,
    workspace_artifactstore: Blobstore,
    iris_model: tuple[Path, Any],
    tmp_path: Path,
) -> None:
    folder, classifier = iris_model
    upload_run_model(workspace_artifactstore, RUN, folder)
    assert register_winner(backend, "iris-1", RUN) == "1"
    X, _ = iris_named()
    rows = X.sample(60, random_state=0).reset_index(drop=True).assign(row_id=range(60))
    source = tmp_path / "in.csv"
    rows.to_csv(source, index=False)

    files = model_files(backend)
    scored = predict_with(files, "iris", source, tmp_path / "out.csv", chunk_rows=25)

    assert (scored.model, scored.version, scored.rows) == ("iris", "1", 60)
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == [*rows.columns, "prediction"]
    expected = classifier.predict(rows.drop(columns=["row_id"]))
    assert out["prediction"].tolist() == list(expected)
    assert out["row_id"].tolist() == list(range(60))
    # The SDK read the model's datastore and its key once, and the cache holds the folder.
    assert files.downloads == 1
    assert len(fake_aml.calls_to("POST", r"/datastores/workspaceartifactstore/listSecrets$")) == 1
    cached = files.cache.get("iris", "1")
    assert cached is not None and (cached / "MLmodel").is_file()
    assert not list(files.cache.root.glob(".partial-*"))

    # Again, by version and by the latest, and from another process's client on the same
    # cache: nothing is downloaded; a named version costs no call at all.
    before = len(fake_aml.calls)
    predict_with(files, "iris:1", source, tmp_path / "again.csv")
    assert len(fake_aml.calls) == before
    other = AzureModelFiles(files._client, tmp_path / "cache", policy=FAST)
    predict_with(other, "iris", source, tmp_path / "again.parquet")
    assert (files.downloads, other.downloads) == (1, 0)
    assert len(fake_aml.calls_to("POST", r"/listSecrets$")) == 1
    assert pd.read_parquet(tmp_path / "again.parquet")["prediction"].tolist() == list(expected)


def test_a_model_is_found_by_its_alias_tag_and_unknown_names_are_refused(
    backend: Backend,
    fake_aml: FakeAzureML,
    workspace_artifactstore: Blobstore,
    iris_model: tuple[Path, Any],
    tmp_path: Path,
) -> None:
    folder, _ = iris_model
    for n, run in enumerate([RUN, "automl-iris-2_0"], start=1):
        upload_run_model(workspace_artifactstore, run, folder)
        register_winner(backend, f"iris-{n}", run)
    source = tmp_path / "in.csv"
    iris_named()[0].head(5).to_csv(source, index=False)
    files = model_files(backend)

    with pytest.raises(InvalidRequest, match="no version of model 'iris' has the alias"):
        predict_with(files, "iris@champion", source, tmp_path / "out.csv")
    fake_aml.models["iris"]["1"]["properties"]["tags"][alias_tag("champion")] = "100.0"
    assert predict_with(files, "iris@champion", source, tmp_path / "out.csv").version == "1"
    assert predict_with(files, "iris", source, tmp_path / "out.csv").version == "2"

    with pytest.raises(InvalidRequest, match="no registered model named 'irises'"):
        predict_with(files, "irises", source, tmp_path / "out.csv")
    with pytest.raises(InvalidRequest, match="no registered model iris:7"):
        predict_with(files, "iris:7", source, tmp_path / "out.csv")


def test_a_model_without_files_fails_clearly_and_leaves_no_cache_entry(
    backend: Backend, workspace_artifactstore: Blobstore, tmp_path: Path
) -> None:
    """Registered, but nothing at its path: a clear error, no entry, no partial folder."""
    register_winner(backend, "iris-empty", "automl-empty_0")
    source = tmp_path / "in.csv"
    iris_named()[0].head(5).to_csv(source, index=False)
    files = model_files(backend)
    with pytest.raises(PermanentError, match="no MLflow model"):
        predict_with(files, "iris:1", source, tmp_path / "out.csv")
    assert files.cache.get("iris", "1") is None
    assert not list(files.cache.root.glob(".partial-*"))
    assert not (tmp_path / "out.csv").exists()
