""" "Only if better" on the azure backend: the new model and the live one, real MLflow
models registered from Azurite's artifact store through the real SDK and the fake, are
downloaded, scored on the same test rows by the local scoring code, and the verdict with
both values reaches the endpoint's reason, the result's note and the report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from azureml_fake.fixtures import Blobstore, backend_on_fake
from azureml_fake.server import FakeAzureML
from fixtures_models import iris_named

from automl_service.engines.azure.data import mltable_text
from automl_service.engines.azure.deployer import (
    COMPARED_WITH_TAG,
    RECORDED_VALUES,
    VERDICT_TAG,
    AzureDeployer,
)
from automl_service.engines.azure.model_files import AzureModelFiles
from automl_service.engines.azure.promotion import compare_with_live, deployment_name
from automl_service.engines.azure.test_rows import AzureTestRows
from automl_service.engines.base import Backend
from automl_service.errors import NotReady
from automl_service.metrics import Goal
from automl_service.report import render_report
from automl_service.request import AutoMLRequest, parse_request
from automl_service.results import RequestResult, RequestState
from automl_service.runs import Endpoint, ModelVersion, RunRecord, RunStatus
from automl_service.selection import select_best
from automl_service.settings import AzureSettings

pytest_plugins = ["azureml_fake.fixtures"]

ENDPOINT = "iris-ep"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    """Two real MLflow model folders on iris: ``good`` (logistic regression, about 0.97
    accuracy) and ``poor`` (the same, regularized to near uselessness), with their classifiers."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X, y = iris_named()
    made = {}
    for name, estimator in [
        ("good", LogisticRegression(max_iter=1000)),
        ("poor", LogisticRegression(C=0.001, max_iter=1000)),
    ]:
        fitted = estimator.fit(X, y)
        folder = tmp_path_factory.mktemp(f"iris-{name}") / "mlflow-model"
        mlflow.sklearn.save_model(
            fitted, str(folder), signature=infer_signature(X, fitted.predict(X))
        )
        made[name] = (folder, fitted)
    return made


@pytest.fixture
def backend(
    fake_aml: FakeAzureML,
    workspace_artifactstore: Blobstore,
    azure_settings: AzureSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Backend:
    """The azure backend on the fake, its model cache in ``tmp_path / "cache"``."""
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    return backend_on_fake(fake_aml, azure_settings, tmp_path / "staging", tmp_path / "cache")


@pytest.fixture
def test_rows(tmp_path: Path) -> tuple[Path, pd.DataFrame, pd.Series]:
    """45 iris rows in a CSV file: (the file, features, species)."""
    X, y = iris_named()
    rows = X.assign(species=y).sample(45, random_state=3).reset_index(drop=True)
    path = tmp_path / "iris-test.csv"
    rows.to_csv(path, index=False)
    return path, rows.drop(columns=["species"]), rows["species"]


def make_request(request_id: str, **validation: Any) -> AutoMLRequest:
    return parse_request(
        json.dumps(
            {
                "request_id": request_id,
                "task": "classification",
                "training_data": "azureml:iris:1",
                "target_column_name": "species",
                "primary_metric": "accuracy",
                "validation": validation,
                "registration": {"model_name": "iris"},
                "deployment": {"endpoint_name": ENDPOINT, "only_if_better": True},
            }
        )
    )


def register(
    backend: Backend, store: Blobstore, folder: Path | None, request_id: str, recorded: float
) -> ModelVersion:
    """``folder``'s files where Azure AutoML leaves a child run's MLflow model (none when
    None), registered as the service registers a winner whose recorded (cross-validation)
    accuracy is ``recorded``."""
    run_id = f"automl-{request_id}_0"
    for file in sorted(p for p in (folder or Path("/nonexistent")).rglob("*") if p.is_file()):
        name = f"ExperimentRun/dcid.{run_id}/outputs/mlflow-model/{file.relative_to(folder)}"  # type: ignore[arg-type]
        store.container.upload_blob(name, file.read_bytes(), overwrite=True)
    runs = [RunRecord(run_id, RunStatus.FINISHED, {"accuracy": recorded})]
    selection = select_best(runs, "accuracy", Goal.MAXIMIZE)
    return backend.registry.register(make_request(request_id), selection)


def deploy_until_decided(
    deployer: Any, request: AutoMLRequest, model: ModelVersion, value: float
) -> Endpoint:
    """Call deploy as the worker does, re-checking every 0.1 s, until it answers."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return deployer.deploy(request, model, value)  # type: ignore[no-any-return]
        except NotReady:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def accuracy(model: Any, X: pd.DataFrame, y: pd.Series) -> float:
    return float((model.predict(X) == y.to_numpy()).mean())


def test_a_challenger_worse_on_the_same_rows_leaves_the_live_model_though_its_record_is_higher(
    backend: Backend,
    fake_aml: FakeAzureML,
    workspace_artifactstore: Blobstore,
    models: dict[str, tuple[Path, Any]],
    test_rows: tuple[Path, pd.DataFrame, pd.Series],
) -> None:
    """The live model (recorded 0.80) beats the challenger (recorded 0.99) on the test
    rows: the tags alone would promote, the same rows keep the live model. Both values in
    the reason are the two models' accuracies on exactly those rows; the report shows
    them."""
    path, X, y = test_rows
    live = register(backend, workspace_artifactstore, models["good"][0], "r-live", 0.80)
    new = register(backend, workspace_artifactstore, models["poor"][0], "r-new", 0.99)
    fake_aml.add_live_deployment(ENDPOINT, "blue", f"azureml:iris:{live.version}")
    recorded = fake_aml.models["iris"][live.version]["properties"]["tags"]
    assert compare_with_live(0.99, "accuracy", Goal.MAXIMIZE, "iris:1", recorded).promote

    request = make_request("r-new", test_data=str(path))
    assert backend.deployer is not None
    with pytest.raises(NotReady, match="on the same test rows"):
        backend.deployer.deploy(request, new, 0.99)  # the scoring runs in the background
    endpoint = deploy_until_decided(backend.deployer, request, new, 0.99)

    good, poor = accuracy(models["good"][1], X, y), accuracy(models["poor"][1], X, y)
    assert poor < good
    assert not endpoint.promoted and endpoint.deployment == "blue"
    assert endpoint.reason == (
        f"on the same 45 test rows: new accuracy = {poor:.6g} vs live iris:1 = {good:.6g}: "
        "not better, endpoint left as it is"
    )
    assert not fake_aml.calls_to("PUT", r"/deployments/")
    assert fake_aml.endpoints[ENDPOINT]["properties"]["traffic"] == {"blue": 100}
    files = backend.model_files
    assert isinstance(files, AzureModelFiles) and files.downloads == 2

    result = RequestResult(
        request_id="r-new",
        state=RequestState.SUCCEEDED,
        metric="accuracy",
        model_name="iris",
        model_version=new.version,
        endpoint=endpoint.name,
        deployment_note=endpoint.reason,
    )
    html = render_report(result, [])
    assert f"new accuracy = {poor:.6g} vs live iris:1 = {good:.6g}" in html


def test_a_challenger_better_on_the_same_rows_goes_live_and_the_verdict_is_kept(
    backend: Backend,
    fake_aml: FakeAzureML,
    workspace_artifactstore: Blobstore,
    models: dict[str, tuple[Path, Any]],
    test_rows: tuple[Path, pd.DataFrame, pd.Series],
) -> None:
    """The challenger (recorded 0.80) beats the live model (recorded 0.99) on the rows:
    it goes live. The verdict is made once: recorded in the new deployment's tags, read
    back by the re-checks (the test rows are gone by then), and carried to the end."""
    path, X, y = test_rows
    live = register(backend, workspace_artifactstore, models["poor"][0], "r-live", 0.99)
    new = register(backend, workspace_artifactstore, models["good"][0], "r-new", 0.80)
    fake_aml.add_live_deployment(ENDPOINT, "blue", f"azureml:iris:{live.version}")
    fake_aml.deployment_delay = 0.5
    request = make_request("r-new", test_data=str(path))
    deployer = backend.deployer
    assert deployer is not None

    deadline = time.monotonic() + 60
    while not fake_aml.calls_to("PUT", r"/deployments/"):
        with pytest.raises(NotReady):
            deployer.deploy(request, new, 0.80)
        assert time.monotonic() < deadline
        time.sleep(0.1)
    good, poor = accuracy(models["good"][1], X, y), accuracy(models["poor"][1], X, y)
    verdict = (
        f"on the same 45 test rows: new accuracy = {good:.6g} vs live iris:1 = {poor:.6g}: "
        "better, promoted"
    )
    tags = fake_aml.calls_to("PUT", r"/deployments/")[0].body["tags"]
    assert tags[VERDICT_TAG] == verdict and tags[COMPARED_WITH_TAG] == "blue"

    path.unlink()  # a second comparison would now fail
    endpoint = deploy_until_decided(deployer, request, new, 0.80)
    assert endpoint.promoted and endpoint.deployment == deployment_name("iris", new.version)
    assert endpoint.reason == f"all traffic on the new deployment; {verdict}"
    assert len(fake_aml.calls_to("PUT", r"/deployments/")) == 1
    files = backend.model_files
    assert isinstance(files, AzureModelFiles) and files.downloads == 2


def test_without_test_rows_a_local_training_file_gives_a_held_out_fifth_to_compare_on(
    backend: Backend,
    fake_aml: FakeAzureML,
    workspace_artifactstore: Blobstore,
    models: dict[str, tuple[Path, Any]],
    tmp_path: Path,
) -> None:
    """No test_data, a local CSV to train on: the deployer scores both models on the fifth
    held out before the job was submitted (the local trainer's split of the same file)."""
    from automl_service.engines.local.testset import split_off_test

    X, y = iris_named()
    table = X.assign(species=y)
    csv = tmp_path / "iris.csv"
    table.to_csv(csv, index=False)
    live = register(backend, workspace_artifactstore, models["good"][0], "r-live", 0.80)
    new = register(backend, workspace_artifactstore, models["poor"][0], "r-new", 0.99)
    fake_aml.add_live_deployment(ENDPOINT, "blue", f"azureml:iris:{live.version}")
    request = make_request("r-new").model_copy(update={"training_data": str(csv)})
    assert backend.deployer is not None

    endpoint = deploy_until_decided(backend.deployer, request, new, 0.99)

    _, held = split_off_test(request, pd.read_csv(csv))
    assert held is not None and len(held) == 30
    hX, hy = held.drop(columns=["species"]), held["species"]
    good, poor = accuracy(models["good"][1], hX, hy), accuracy(models["poor"][1], hX, hy)
    assert not endpoint.promoted
    assert endpoint.reason == (
        f"on the same 30 test rows: new accuracy = {poor:.6g} vs live iris:1 = {good:.6g}: "
        "not better, endpoint left as it is"
    )


def test_a_live_model_that_cannot_be_scored_is_replaced(
    backend: Backend,
    fake_aml: FakeAzureML,
    workspace_artifactstore: Blobstore,
    models: dict[str, tuple[Path, Any]],
    test_rows: tuple[Path, pd.DataFrame, pd.Series],
) -> None:
    """A live version whose files are gone cannot score the rows: replaced, saying so."""
    live = register(backend, workspace_artifactstore, None, "r-live", 0.99)
    new = register(backend, workspace_artifactstore, models["poor"][0], "r-new", 0.5)
    fake_aml.add_live_deployment(ENDPOINT, "blue", f"azureml:iris:{live.version}")
    assert backend.deployer is not None
    request = make_request("r-new", test_data=str(test_rows[0]))
    with pytest.raises(NotReady, match="moving to"):
        for _ in range(600):
            try:
                backend.deployer.deploy(request, new, 0.5)
            except NotReady as exc:
                if "moving to" in str(exc):
                    raise
                time.sleep(0.1)
    tags = fake_aml.calls_to("PUT", r"/deployments/")[0].body["tags"]
    assert tags[VERDICT_TAG].startswith("on the same 45 test rows, the live iris:1 cannot score")
    assert tags[VERDICT_TAG].endswith("; replaced")


def test_without_test_data_the_recorded_values_decide_and_the_reason_says_so(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """Only test_data_size (Azure ML holds those rows out inside the job): nothing is
    scored here, the values recorded at training decide, and the reason says so."""
    fake_aml.add_model_version(
        "iris",
        "1",
        {
            "automl_service.metric": "accuracy",
            "automl_service.metric_value": "0.95",
            "automl_service.goal": "maximize",
        },
    )
    fake_aml.add_live_deployment(ENDPOINT, "blue", "azureml:iris:1")

    def never(*_: Any) -> Any:
        raise AssertionError("nothing is scored without test rows")

    deployer = AzureDeployer(ml_client, compare=never)
    endpoint = deployer.deploy(
        make_request("r-size", test_data_size=0.2), ModelVersion("iris", "2"), 0.9
    )
    assert not endpoint.promoted
    assert endpoint.reason.startswith(f"{RECORDED_VALUES} (Azure ML held the test_data_size")
    assert endpoint.reason.endswith(
        "new accuracy = 0.9 vs live iris:1 = 0.95: not better, endpoint left as it is"
    )


def test_test_rows_are_read_from_a_datastore_path_and_a_data_asset(
    backend: Backend,
    fake_aml: FakeAzureML,
    workspace_blobstore: Blobstore,
    test_rows: tuple[Path, pd.DataFrame, pd.Series],
    tmp_path: Path,
) -> None:
    """The same table, named as a file on the workspace's datastore and as an MLTable data
    asset on it, is read back through the SDK as the local file reads."""
    path, X, y = test_rows
    expected = X.assign(species=y)
    container = workspace_blobstore.container
    container.upload_blob("tests/iris-test.csv", path.read_bytes())
    container.upload_blob("iris-test-table/iris-test.csv", path.read_bytes())
    mltable = mltable_text("./iris-test.csv")
    container.upload_blob("iris-test-table/MLTable", mltable.encode())
    fake_aml.add_data_version(
        "iris-test", "1", "azureml://datastores/workspaceblobstore/paths/iris-test-table/"
    )
    client = backend.model_files._client  # type: ignore[union-attr]
    reader = AzureTestRows(client, tmp_path / "scratch")

    for reference in (
        "azureml://datastores/workspaceblobstore/paths/tests/iris-test.csv",
        "azureml:iris-test:1",
        str(path),
    ):
        table = reader.read(reference)
        assert table is not None, reference
        pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert reader.read("https://example.com/iris.csv") is None
    assert not list((tmp_path / "scratch").iterdir())  # the downloads are removed
