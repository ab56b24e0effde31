"""``AzureRegistry``: the chosen run's MLflow model as a workspace model version."""

from __future__ import annotations

from typing import Any

from ...azure_retry import RetryPolicy, call
from ...logs import get_logger
from ...request import AutoMLRequest
from ...runs import ModelVersion
from ...selection import Selection
from ...tags import (
    DATA_TAG,
    GOAL_TAG,
    JOB_TAG,
    METRIC_TAG,
    METRIC_VALUE_TAG,
    REQUEST_TAG,
    RUN_TAG,
    TEST_METRIC_VALUE_TAG,
)

log = get_logger(__name__)


def model_path(run_id: str) -> str:
    """Where Azure AutoML keeps a child run's MLflow model."""
    return f"azureml://jobs/{run_id}/outputs/artifacts/outputs/mlflow-model/"


def model_tags(request: AutoMLRequest, selection: Selection) -> dict[str, str]:
    """The request's registration tags plus the lineage the service relies on."""
    tags = {
        **request.registration.tags,
        REQUEST_TAG: request.id,
        JOB_TAG: request.job_name,
        RUN_TAG: selection.winner.run_id,
        METRIC_TAG: selection.metric,
        METRIC_VALUE_TAG: repr(selection.value),
        GOAL_TAG: selection.goal.value,
    }
    if selection.metric in selection.test_metrics:
        tags[TEST_METRIC_VALUE_TAG] = repr(selection.test_metrics[selection.metric])
    if request.data_fingerprint:
        tags[DATA_TAG] = request.data_fingerprint
    return tags


class AzureRegistry:
    """Registers models with ``ml_client.models``.

    Idempotent by the request-id tag: ``register`` first looks for a version of the model
    tagged with the request id and returns it (``created=False``) instead of adding one.
    Transient failures raise TransientError after retries; refusals raise PermanentError.
    """

    def __init__(self, ml_client: Any, *, policy: RetryPolicy | None = None) -> None:
        self._client = ml_client
        self._policy = policy

    def find(self, request: AutoMLRequest) -> ModelVersion | None:
        """The version registered for this request, if any (one listing call)."""
        from azure.core.exceptions import ResourceNotFoundError

        def versions() -> list[Any]:
            try:
                return list(self._client.models.list(name=request.model_name))
            except ResourceNotFoundError:
                return []

        for model in call("models.list", versions, policy=self._policy):
            tags = model.tags or {}
            if tags.get(REQUEST_TAG) == request.id:
                return ModelVersion(
                    name=model.name,
                    version=str(model.version),
                    source=str(model.path or ""),
                    run_id=tags.get(RUN_TAG, ""),
                    created=False,
                )
        return None

    def register(self, request: AutoMLRequest, selection: Selection) -> ModelVersion:
        """The winner's MLflow model as a new version, or the one this request made."""
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        existing = self.find(request)
        if existing is not None:
            log.info("azure.model_found", model=existing.name, version=existing.version)
            return existing
        run_id = selection.winner.run_id
        model = Model(
            name=request.model_name,
            path=model_path(run_id),
            type=AssetTypes.MLFLOW_MODEL,
            tags=model_tags(request, selection),
            description=request.registration.description,
        )
        created = call(
            "models.create_or_update",
            self._client.models.create_or_update,
            model,
            policy=self._policy,
        )
        log.info("azure.model_registered", model=created.name, version=created.version)
        return ModelVersion(
            name=created.name,
            version=str(created.version),
            source=model_path(run_id),
            run_id=run_id,
        )
