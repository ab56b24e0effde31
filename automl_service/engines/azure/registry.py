"""``AzureRegistry``: the chosen run's MLflow model as a workspace model version."""

from __future__ import annotations

from typing import Any

from ...azure_retry import RetryPolicy, call
from ...errors import PermanentError
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
from .model_versions import version_key

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
    Two receivers of one request's message (its visibility ran out while the first was
    still at work) can both look before either writes; the second to write then gets the
    next version number. So after writing, ``register`` looks again: the lowest version
    tagged with the request id is the request's, and a later one it wrote itself is
    archived (hidden from listings, ``find`` included), so every receiver answers with
    the same version. Transient failures raise TransientError after retries; refusals
    raise PermanentError.
    """

    def __init__(self, ml_client: Any, *, policy: RetryPolicy | None = None) -> None:
        self._client = ml_client
        self._policy = policy

    def find(self, request: AutoMLRequest) -> ModelVersion | None:
        """The version registered for this request, if any (one listing call)."""
        tagged = self._tagged(request)
        return _model_version(tagged[0], created=False) if tagged else None

    def _tagged(self, request: AutoMLRequest) -> list[Any]:
        """The model's active versions tagged with the request id, lowest version first."""
        from azure.core.exceptions import ResourceNotFoundError

        def versions() -> list[Any]:
            try:
                return list(self._client.models.list(name=request.model_name))
            except ResourceNotFoundError:
                return []

        listed = call("models.list", versions, policy=self._policy)
        tagged = [m for m in listed if (m.tags or {}).get(REQUEST_TAG) == request.id]
        return sorted(tagged, key=lambda m: version_key(str(m.version)))

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
        created = self._create(model)
        log.info("azure.model_registered", model=created.name, version=created.version)
        first = self._first(request, str(created.version))
        if first is not None:
            return first
        return ModelVersion(
            name=created.name,
            version=str(created.version),
            source=model_path(run_id),
            run_id=run_id,
        )

    def _create(self, model: Any) -> Any:
        """The new version of ``model``. The SDK numbers it from the model's
        ``nextVersion``; when another registration of the same name took that number
        first, Azure refuses the write ("Asset paths cannot be updated.") and it is tried
        again with the number that is next now, up to ``VERSION_RACE_ATTEMPTS`` times."""
        for attempt in range(1, VERSION_RACE_ATTEMPTS + 1):
            model.version = None  # numbered afresh by the SDK
            try:
                return call(
                    "models.create_or_update",
                    self._client.models.create_or_update,
                    model,
                    policy=self._policy,
                )
            except PermanentError as exc:
                if not _version_taken(exc) or attempt == VERSION_RACE_ATTEMPTS:
                    raise
                log.warning("azure.model_version_taken", model=model.name, error=str(exc))
        raise AssertionError("unreachable")

    def _first(self, request: AutoMLRequest, written: str) -> ModelVersion | None:
        """When a lower version is tagged with this request (another receiver wrote it
        first), archive ``written`` and return that one; else None."""
        tagged = self._tagged(request)
        if not tagged or version_key(str(tagged[0].version)) >= version_key(written):
            return None
        first = tagged[0]
        call(
            "models.archive",
            self._client.models.archive,
            name=request.model_name,
            version=written,
            policy=self._policy,
        )
        log.warning(
            "azure.model_duplicate_archived",
            model=request.model_name,
            archived=written,
            version=str(first.version),
        )
        return _model_version(first, created=False)


#: Writes of a new model version tried before a lost race for its number is an error.
VERSION_RACE_ATTEMPTS = 3


def _version_taken(exc: BaseException) -> bool:
    """Whether a refused model-version write lost the race for its number: Azure answers
    a PUT of an existing version with another path "Asset paths cannot be updated." (or a
    409 conflict)."""
    text = str(exc)
    return "Asset paths cannot be updated" in text or "(HTTP 409)" in text


def _model_version(model: Any, *, created: bool) -> ModelVersion:
    tags = model.tags or {}
    return ModelVersion(
        name=model.name,
        version=str(model.version),
        source=str(model.path or ""),
        run_id=tags.get(RUN_TAG, ""),
        created=created,
    )
