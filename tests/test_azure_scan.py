"""The child-run scan on a real MLflow tracking server filled like an Azure AutoML parent."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azureml_fake.fixtures import Iteration, TrackingServer, fill_automl_parent
from azureml_fake.server import FakeAzureML
from fixtures_retry import FAST

from automl_service.engines.azure.engine import AzureEngine
from automl_service.engines.azure.status import PollSchedule
from automl_service.engines.azure.tracking import WorkspaceTracking, tracking_host
from automl_service.engines.base import JobState
from automl_service.errors import TransientError
from automl_service.metrics import Goal
from automl_service.selection import select_best

pytest_plugins = ["azureml_fake.fixtures"]


def parent_name() -> str:
    return f"automl-{uuid.uuid4().hex[:10]}"


def setup_runs() -> list[Iteration]:
    return [Iteration(s, {}) for s in ("setup", "featurize", "ModelExplain")]


def test_tracking_uri_becomes_https() -> None:
    """The workspace's azureml:// tracking URI is read over https on the same host and path."""
    uri = "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s/workspaces/w"
    assert (
        tracking_host(uri)
        == "https://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s/workspaces/w"
    )
    with pytest.raises(ValueError):
        tracking_host("sqlite:///x.db")


def test_scan_pages_through_iterations_only(mlflow_server: TrackingServer) -> None:
    """All 12 iterations come back over three pages; setup/featurize/explain runs do not."""
    parent = parent_name()
    children = [Iteration(str(n), {"AUC_weighted": 0.5 + n / 100}) for n in range(12)]
    fill_automl_parent(mlflow_server, parent, children + setup_runs(), best_child=f"{parent}_11")
    tracking = WorkspaceTracking(mlflow_server.url, policy=FAST)
    engine = AzureEngine(object(), tracking=tracking, page_size=5, policy=FAST)
    runs = engine.child_runs(parent)
    assert sorted(r.run_id for r in runs) == sorted(f"{parent}_{n}" for n in range(12))
    # parent lookup + ceil(15 / 5) pages + the best iteration's test run, if any
    assert tracking.calls == 1 + 3 + 1
    best = select_best(runs, "AUC_weighted", Goal.MAXIMIZE)
    assert best.winner.run_id == f"{parent}_11"
    assert best.winner.algorithm == "LightGBM"


def test_completed_job_reports_engine_best_child(
    fake_aml: FakeAzureML, ml_client: Any, mlflow_server: TrackingServer
) -> None:
    """A completed job's status carries the parent's automl_best_child_run_id tag, read
    from the tracking URI the workspace names."""
    parent = parent_name()
    fill_automl_parent(
        mlflow_server, parent, [Iteration("0", {"accuracy": 0.9})], best_child=f"{parent}_0"
    )
    fake_aml.tracking_uri = mlflow_server.url
    fake_aml._put_job(
        parent,
        {"properties": {"jobType": "AutoML", "taskDetails": {"taskType": "Classification"}}},
    )
    fake_aml.job_scripts[parent] = ["Completed"]
    engine = AzureEngine(ml_client, policy=FAST, poll=PollSchedule(0, 0))
    status = engine.job_status(parent)
    assert status is not None and status.state is JobState.COMPLETED
    assert status.best_child_run_id == f"{parent}_0"
    assert [r.run_id for r in engine.child_runs(parent)] == [f"{parent}_0"]


def test_failed_and_unscored_children_are_rejected_with_reasons(
    mlflow_server: TrackingServer,
) -> None:
    """Iterations that failed or lack the metric are not chosen, and say why."""
    parent = parent_name()
    fill_automl_parent(
        mlflow_server,
        parent,
        [
            Iteration("0", {"r2_score": 0.7}),
            Iteration("1", {"r2_score": 0.99}, status="FAILED"),
            Iteration("2", {"spearman_correlation": 0.9}),
        ],
    )
    engine = AzureEngine(object(), tracking=WorkspaceTracking(mlflow_server.url, policy=FAST))
    best = select_best(engine.child_runs(parent), "r2_score", Goal.MAXIMIZE)
    assert best.winner.run_id == f"{parent}_0"
    reasons = {r.run_id: r.reason for r in best.rejected}
    assert "FAILED" in reasons[f"{parent}_1"]
    assert "no r2_score" in reasons[f"{parent}_2"]


def test_parent_not_yet_tracked_is_transient(mlflow_server: TrackingServer) -> None:
    """A job whose parent run is not on the tracking server yet is retried later."""
    engine = AzureEngine(object(), tracking=WorkspaceTracking(mlflow_server.url, policy=FAST))
    with pytest.raises(TransientError, match="not yet"):
        engine.child_runs(parent_name())


def test_unreachable_tracking_server_is_transient() -> None:
    """A refused connection to the tracking server is retried, then reported as transient."""
    tracking = WorkspaceTracking("http://127.0.0.1:9", policy=FAST)
    with pytest.raises(TransientError):
        tracking.get_run("automl-x")
    assert tracking.calls == FAST.attempts


def test_throttled_and_unavailable_tracking_server_is_retried(
    mlflow_server: TrackingServer,
) -> None:
    """A 429 with Retry-After and a 503 from the tracking server are retried by the
    service's own policy, and the scan completes."""
    from azureml_fake.flaky_proxy import FlakyProxy

    parent = parent_name()
    fill_automl_parent(mlflow_server, parent, [Iteration("0", {"accuracy": 0.7})])
    proxy = FlakyProxy(mlflow_server.url, [429, 503])
    try:
        tracking = WorkspaceTracking(proxy.url, policy=FAST)
        runs = AzureEngine(object(), tracking=tracking).child_runs(parent)
    finally:
        proxy.stop()
    assert [r.run_id for r in runs] == [f"{parent}_0"]
    assert tracking.calls == 4  # get_run twice refused, then get_run and one search
    assert proxy.requests == 4


def test_azure_test_run_metrics_become_the_best_iterations_test_metrics(
    mlflow_server: TrackingServer,
) -> None:
    """With test data Azure scores its best iteration in a test run under it: those
    scores reach the selection as the winner's test metrics, and no other run's."""
    parent = parent_name()
    fill_automl_parent(
        mlflow_server,
        parent,
        [
            Iteration("0", {"accuracy": 0.81}),
            Iteration("1", {"accuracy": 0.86}),
            Iteration("1_test", {"accuracy": 0.84, "AUC_weighted": 0.9}, under="1"),
        ],
        best_child=f"{parent}_1",
    )
    engine = AzureEngine(object(), tracking=WorkspaceTracking(mlflow_server.url, policy=FAST))
    runs = engine.child_runs(parent)
    assert sorted(r.run_id for r in runs) == [f"{parent}_0", f"{parent}_1"]
    best = select_best(runs, "accuracy", Goal.MAXIMIZE)
    assert best.winner.run_id == f"{parent}_1"
    assert best.test_metrics == {"accuracy": 0.84, "AUC_weighted": 0.9}
    assert best.leaderboard[1].metrics == {"accuracy": 0.81}


def test_the_scan_passes_azures_mlflow_rules_and_honours_retry_after(
    mlflow_server: TrackingServer,
) -> None:
    """In front of the real server, the workspace MLflow's own rules: a bearer token, pages
    under 1000 runs, 429 with Retry-After. The scan asks for pages Azure accepts and
    waits as long as it is told."""
    from azureml_fake.fixtures import StaticCredential
    from azureml_fake.mlflow_front import AzureMlflowFront
    from mlflow.exceptions import MlflowException

    from automl_service.azure_retry import RetryPolicy

    parent = parent_name()
    fill_automl_parent(
        mlflow_server, parent, [Iteration(str(n), {"accuracy": n / 10}) for n in range(3)]
    )
    front = AzureMlflowFront(mlflow_server.url)
    try:
        policy = RetryPolicy(attempts=3, base_seconds=0.01, throttled_base_seconds=0.01)
        tracking = WorkspaceTracking(front.url, StaticCredential(), policy=policy)
        front.throttle("1")
        runs = AzureEngine(object(), tracking=tracking, policy=policy).child_runs(parent)
        assert sorted(r.run_id for r in runs) == [f"{parent}_{n}" for n in range(3)]
        (first, _, _), (second, _, _) = front.requests[:2]
        assert second - first >= 0.95  # the Retry-After of the 429, not the 10 ms backoff
        assert not front.refused
        # The rules are live: a page of 1000 and a call without a token are refused.
        with pytest.raises(MlflowException, match="MaxResults must be less than 1000"):
            tracking.search_runs(["0"], "", 1000)
        with pytest.raises(MlflowException, match="UNAUTHENTICATED"):
            WorkspaceTracking(front.url, policy=policy).get_run(parent)
    finally:
        front.stop()
