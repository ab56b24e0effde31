"""The whole request flow on the azure backend, driven by the real worker: submit, poll,
scan, register, deploy, and the "only if better" refusal, against the loopback fake and a
real MLflow tracking server."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from azureml_fake.fixtures import (
    Iteration,
    TrackingServer,
    backend_on_fake,
    fill_automl_parent,
)
from azureml_fake.mlflow_front import AzureMlflowFront
from azureml_fake.server import FakeAzureML

from automl_service.engines.azure.promotion import deployment_name
from automl_service.queues.sqlite import SqliteQueue
from automl_service.result_store import SqliteResultStore
from automl_service.results import RequestResult, RequestState
from automl_service.settings import AzureSettings, Settings
from automl_service.stats import WorkerStats
from automl_service.waiting import wait_for_results
from automl_service.worker import Worker

pytest_plugins = ["azureml_fake.fixtures"]


@pytest.fixture
def azure_worker(
    settings: Settings,
    fake_aml: FakeAzureML,
    azure_settings: AzureSettings,
    mlflow_server: TrackingServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Worker, SqliteQueue]]:
    """A worker on the azure backend: the fake workspace, whose tracking URI is the real
    MLflow server behind the workspace MLflow's own rules (token, page size, 429)."""
    front = AzureMlflowFront(mlflow_server.url)
    fake_aml.tracking_uri = front.url
    settings.backend = "azure"
    settings.azure = azure_settings.model_copy(update={"poll_min_seconds": 0.0})
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    backend = backend_on_fake(fake_aml, settings.azure, settings.local.data_dir / "azure-mltable")
    settings.local.data_dir.mkdir(parents=True, exist_ok=True)
    queue = SqliteQueue(settings.local.data_dir / "queue.db", "requests")
    results = SqliteResultStore(settings.local.data_dir / "results.db")
    yield Worker(queue, backend, results, settings.worker, WorkerStats()), queue
    front.stop()
    assert not front.refused, front.refused


def request_body(request_id: str, **changes: Any) -> str:
    body: dict[str, Any] = {
        "request_id": request_id,
        "task": "classification",
        "training_data": "azureml://datastores/workspaceblobstore/paths/churn/",
        "target_column_name": "churned",
        "primary_metric": "AUC_weighted",
        "selection": {"metric": "accuracy"},
        "registration": {"model_name": "churn"},
        "deployment": {"endpoint_name": "churn-ep"},
    }
    body.update(changes)
    return json.dumps(body)


def seed(server: TrackingServer, job: str) -> None:
    """Iteration 1 wins on accuracy; Azure's own pick (on AUC) was iteration 0."""
    fill_automl_parent(
        server,
        job,
        [
            Iteration("setup", {}),
            Iteration("0", {"AUC_weighted": 0.93, "accuracy": 0.81}, algorithm="LightGBM"),
            Iteration("1", {"AUC_weighted": 0.91, "accuracy": 0.86}, algorithm="XGBoost"),
            Iteration("2", {"AUC_weighted": 0.88, "accuracy": 0.80}, status="FAILED"),
        ],
        best_child=f"{job}_0",
    )


def run_until_ended(worker: Worker, request_id: str, timeout: float = 60.0) -> RequestResult:
    """Run the worker's batches until the request has ended."""
    stop = threading.Event()
    step = lambda: worker.run_once(stop)  # noqa: E731
    ended = wait_for_results(worker.results, [request_id], timeout=timeout, step=step, interval=0.2)
    return ended[request_id]


def control_plane(fake: FakeAzureML) -> Counter[str]:
    """Calls per kind (method and resource), long-running-operation polls left out."""
    kinds: Counter[str] = Counter()
    for c in fake.control_plane_calls():
        tail = c.path.removeprefix(fake.ws_path)
        resource = "/".join(p for p in tail.split("/")[1::2] if p) or "workspace"
        kinds[f"{c.method} {resource}"] += 1
    return kinds


def test_request_trains_registers_and_deploys(
    azure_worker: tuple[Worker, SqliteQueue],
    fake_aml: FakeAzureML,
    mlflow_server: TrackingServer,
) -> None:
    """A request goes from the queue to a deployed model; the result names the chosen run,
    notes that Azure's own pick differed, and the calls it cost stay few."""
    worker, queue = azure_worker
    rid = f"flow-{uuid.uuid4().hex[:8]}"
    job = f"automl-{rid}"
    seed(mlflow_server, job)
    fake_aml.default_job_script = ["NotStarted", "Running", "Running", "Completed"]
    queue.send(request_body(rid))
    result = run_until_ended(worker, rid)
    assert result.state is RequestState.SUCCEEDED, result.error
    assert result.best_run_id == f"{job}_1"
    assert result.engine_best_run_id == f"{job}_0"
    assert "engine's own best run" in (result.selection_reason or "")
    assert (result.model_name, result.model_version) == ("churn", "1")
    assert result.endpoint == "churn-ep" and result.scoring_uri
    target = deployment_name("churn", "1")
    assert fake_aml.endpoints["churn-ep"]["properties"]["traffic"] == {target: 100}
    tags = fake_aml.models["churn"]["1"]["properties"]["tags"]
    assert tags["automl_service.run_id"] == f"{job}_1"
    assert tags["automl_service.metric"] == "accuracy"
    calls = control_plane(fake_aml)
    print("control-plane calls for one request:", sum(calls.values()), dict(calls))
    # The model version is written twice: registered, then given the champion alias tag
    # once traffic is on it.
    assert calls["PUT jobs"] == 1 and calls["PUT models/versions"] == 2
    assert "automl_service.alias.champion" in tags
    assert sum(calls.values()) <= 40

    # The same request sent again changes nothing in the workspace.
    before = len(fake_aml.calls_to("PUT", r"."))
    queue.send(request_body(rid))
    again = run_until_ended(worker, rid)
    assert again.state is RequestState.SUCCEEDED
    assert len(fake_aml.calls_to("PUT", r".")) == before


def test_only_if_better_refusal_reaches_the_result(
    azure_worker: tuple[Worker, SqliteQueue],
    fake_aml: FakeAzureML,
    mlflow_server: TrackingServer,
) -> None:
    """With a better live model, the request succeeds, the endpoint is untouched, and the
    result says why."""
    worker, queue = azure_worker
    rid = f"flow-{uuid.uuid4().hex[:8]}"
    seed(mlflow_server, f"automl-{rid}")
    fake_aml.default_job_script = ["Completed"]
    fake_aml.add_model_version(
        "churn",
        "1",
        {
            "automl_service.metric": "accuracy",
            "automl_service.metric_value": "0.95",
            "automl_service.goal": "maximize",
        },
    )
    fake_aml.add_live_deployment("churn-ep", "blue", "azureml:churn:1")
    deployment = {"endpoint_name": "churn-ep", "only_if_better": True}
    queue.send(request_body(rid, deployment=deployment))
    result = run_until_ended(worker, rid)
    assert result.state is RequestState.SUCCEEDED, result.error
    assert result.model_version == "2"
    assert "not better" in (result.deployment_note or "")
    assert fake_aml.endpoints["churn-ep"]["properties"]["traffic"] == {"blue": 100}
    assert not fake_aml.calls_to("PUT", r"/deployments/")


def test_failed_job_fails_the_request_with_its_error(
    azure_worker: tuple[Worker, SqliteQueue], fake_aml: FakeAzureML
) -> None:
    """A job that ends Failed ends the request as failed, carrying Azure's error."""
    worker, queue = azure_worker
    rid = f"flow-{uuid.uuid4().hex[:8]}"
    fake_aml.default_job_script = ["Running", "Failed"]
    fake_aml.job_errors[f"automl-{rid}"] = "Compute cpu-cluster was deleted"
    queue.send(request_body(rid))
    result = run_until_ended(worker, rid)
    assert result.state is RequestState.FAILED
    assert "cpu-cluster was deleted" in (result.error or "")
    assert not fake_aml.calls_to("PUT", r"/models/")


def test_a_canceled_request_cancels_its_azure_job(
    azure_worker: tuple[Worker, SqliteQueue], fake_aml: FakeAzureML
) -> None:
    """A cancel order for a request whose job runs on Azure ML: the job gets a cancel
    call, the request ends canceled with the reason, nothing is registered."""
    from automl_service.control import cancel_order

    worker, queue = azure_worker
    rid = f"cancel-{uuid.uuid4().hex[:8]}"
    fake_aml.job_scripts[f"automl-{rid}"] = ["NotStarted", "Running"]
    queue.send(request_body(rid))
    stop = threading.Event()
    worker.run_once(stop)
    assert worker.results.get(rid).state is RequestState.QUEUED  # type: ignore[union-attr]
    queue.send(cancel_order(rid, "budget spent").to_message())
    result = run_until_ended(worker, rid)
    assert result.state is RequestState.CANCELED
    assert result.error is not None and result.error.endswith("budget spent")
    assert len(fake_aml.calls_to("POST", rf"/jobs/automl-{rid}/cancel$")) == 1
    assert fake_aml.models == {}


def test_backend_is_built_from_settings_alone(settings: Settings) -> None:
    """With backend = azure and a named workspace, the composition root builds the azure
    engine, registry and deployer without any network call."""
    from automl_service.backends import build_backend
    from automl_service.engines.azure.data import AssetVersions, DatastoreETags, DataVersions
    from automl_service.engines.azure.deployer import AzureDeployer
    from automl_service.engines.azure.engine import AzureEngine
    from automl_service.engines.azure.registry import AzureRegistry

    settings.backend = "azure"
    settings.azure = AzureSettings(
        subscription_id="s-1", resource_group="rg-1", workspace_name="ws-1", max_instance_count=2
    )
    backend = build_backend(settings)
    assert isinstance(backend.engine, AzureEngine) and backend.engine.name == "azure"
    assert isinstance(backend.registry, AzureRegistry)
    assert isinstance(backend.deployer, AzureDeployer)
    # For the data's fingerprint: a floating asset's version, a datastore path's ETags.
    assert isinstance(backend.data_versions, DataVersions)
    readers = [type(reader) for reader in backend.data_versions.readers]
    assert readers == [AssetVersions, DatastoreETags]


def test_readiness_check_reads_the_workspace(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """check() succeeds against a reachable workspace and is transient when it is down."""
    from fixtures_retry import FAST

    from automl_service.engines.azure.engine import AzureEngine
    from automl_service.errors import TransientError

    engine = AzureEngine(ml_client, policy=FAST)
    engine.check()
    fake_aml.fail("GET", r"/workspaces/ws-test$", 503, times=100)
    with pytest.raises(TransientError):
        engine.check()
