"""Helpers shared by the tests that drive the service in-process: a worker from the
composition root, small iris requests, the MLflow store read back, and a settable clock.
"""

from __future__ import annotations

import json
from typing import Any

from automl_service.backends import build_worker
from automl_service.settings import Settings
from automl_service.worker import Worker


class FakeClock:
    """A settable clock (seconds since the epoch), so expiry is tested without sleeping."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_worker(settings: Settings) -> Worker:
    """The worker the service would run with ``settings`` (its queue is ``worker.queue``)."""
    return build_worker(settings)


def iris_request(request_id: str, **changes: Any) -> dict[str, Any]:
    """A small iris classification request (a few seconds of training)."""
    body: dict[str, Any] = {
        "request_id": request_id,
        "task": "classification",
        "training_data": "sample:iris",
        "target_column_name": "target",
        "primary_metric": "accuracy",
        "limits": {"timeout_seconds": 10, "max_trials": 6},
        "registration": {"model_name": f"iris-{request_id}"},
    }
    body.update(changes)
    return body


def iris_body(request_id: str, **changes: Any) -> str:
    """``iris_request`` as the JSON text a producer sends."""
    return json.dumps(iris_request(request_id, **changes))


def mlflow_client(tracking_uri: str) -> Any:
    """An MLflow client on one store, for tracking and registry alike."""
    import mlflow  # only the tests that read a store back pay for the import

    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def parent_runs(client: Any, job_name: str | None = None) -> list[Any]:
    """Every parent run (a run with no parent) in the store, or only those of ``job_name``."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=5000)
    return [
        r
        for r in runs
        if "mlflow.parentRunId" not in r.data.tags
        and (job_name is None or r.info.run_name == job_name)
    ]
