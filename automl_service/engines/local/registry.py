"""The local model registry: MLflow's Model Registry on the local tracking store.

Registration is keyed by the request id, written as a tag on the model version, so calling
``register`` again after a crash at any instant returns the version already made:
- a version tagged with the request id is the answer;
- a version of the winner's run without the request-id tag is one whose tagging was cut
  short (the process died between creating and tagging it): it is tagged and adopted;
- otherwise a new version is created, with its tags in the same call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from ...errors import PermanentError
from ...logs import get_logger
from ...request import AutoMLRequest
from ...runs import ModelVersion
from ...selection import Selection
from ...tags import (
    DATA_TAG,
    JOB_TAG,
    METRIC_TAG,
    METRIC_VALUE_TAG,
    REQUEST_TAG,
    RUN_TAG,
    TEST_METRIC_VALUE_TAG,
)
from .mlflow_errors import mlflow_errors
from .threshold import THRESHOLD_REASON_TAG, THRESHOLD_TAG

log = get_logger(__name__)

T = TypeVar("T")


#: Where a child run keeps its model: ``runs:/<run id>/model``.
MODEL_ARTIFACT = "model"

_FAILED_STATUS = "FAILED_REGISTRATION"


class MlflowRegistry:
    """Implements ``automl_service.engines.base.Registry`` on MLflow's Model Registry.

    Blocking; each call makes a handful of registry calls. Raises TransientError when the
    store is unreachable or busy (HTTP 429/5xx, a locked database), PermanentError when the
    winner run has no model or the registry refuses the request.
    """

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        self.client = mlflow.MlflowClient(
            tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri
        )

    def register(self, request: AutoMLRequest, selection: Selection) -> ModelVersion:
        """Register the winner's ``model`` artifact under ``request.model_name``, tagged with
        the request id, job name, run id, selection metric and value, the decision threshold
        when one was set or chosen (and how it was chosen), and the request's registration
        tags. Idempotent: returns the version already registered for the request
        (``created=False``) instead of making another."""
        name = request.model_name
        run_id = selection.winner.run_id
        found = self.find(request)
        if found is not None:
            return found
        tags = {
            **request.registration.tags,
            REQUEST_TAG: request.id,
            JOB_TAG: request.job_name,
            RUN_TAG: run_id,
            METRIC_TAG: selection.metric,
            METRIC_VALUE_TAG: repr(selection.value),
        }
        if selection.metric in selection.test_metrics:
            tags[TEST_METRIC_VALUE_TAG] = repr(selection.test_metrics[selection.metric])
        if request.data_fingerprint:
            tags[DATA_TAG] = request.data_fingerprint
        if request.training.decision_threshold is not None:
            tags[THRESHOLD_TAG] = repr(request.training.decision_threshold)
        else:  # one chosen for a metric: the winner's own, and how it was chosen
            for key in (THRESHOLD_TAG, THRESHOLD_REASON_TAG):
                if key in selection.winner.tags:
                    tags[key] = selection.winner.tags[key]
        adopted = self._adopt_untagged(name, run_id, tags)
        if adopted is not None:
            return adopted
        source, model_id = self._model_source(run_id)
        with mlflow_errors(f"registering run {run_id} as {name}"):
            self._ensure_registered_model(name)
            version = self.client.create_model_version(
                name=name,
                source=source,
                run_id=run_id,
                tags=tags,
                description=request.registration.description,
                model_id=model_id,
            )
        log.info("registry.registered", model=name, version=version.version, run_id=run_id)
        return _record(version, created=True)

    def find(self, request: AutoMLRequest) -> ModelVersion | None:
        """The version tagged with this request's id (the oldest, should there be two), or
        None. Read-only."""
        versions = self._search(
            f"name = '{_quote(request.model_name)}' and "
            f"tags.`{REQUEST_TAG}` = '{_quote(request.id)}'"
        )
        usable = [v for v in versions if v.status != _FAILED_STATUS]
        if not usable:
            return None
        return _record(min(usable, key=lambda v: int(v.version)), created=False)

    # Steps --------------------------------------------------------------------------

    def _adopt_untagged(self, name: str, run_id: str, tags: dict[str, str]) -> ModelVersion | None:
        versions = self._search(f"name = '{_quote(name)}' and run_id = '{_quote(run_id)}'")
        orphans = [v for v in versions if REQUEST_TAG not in v.tags and v.status != _FAILED_STATUS]
        if not orphans:
            return None
        version = min(orphans, key=lambda v: int(v.version))
        with mlflow_errors(f"tagging {name} version {version.version}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(name, version.version, key, value)
        log.info("registry.adopted_untagged", model=name, version=version.version, run_id=run_id)
        return _record(version, created=False)

    def _model_source(self, run_id: str) -> tuple[str, str | None]:
        """Where the run's model lives: the run's own ``model`` folder, or (MLflow 3) the
        logged model named ``model`` whose source run it is."""
        with mlflow_errors(f"reading run {run_id}"):
            run = self.client.get_run(run_id)
            # The run's own folder, read directly: the client's ``list_artifacts`` also
            # looks up logged models through MLflow's process-wide store, not this one.
            repo = get_artifact_repository(
                run.info.artifact_uri, tracking_uri=self.client.tracking_uri
            )
            files = repo.list_artifacts(MODEL_ARTIFACT)
            if f"{MODEL_ARTIFACT}/MLmodel" in {f.path for f in files}:
                return f"{run.info.artifact_uri}/{MODEL_ARTIFACT}", None
            logged = [
                m
                for m in _pages(
                    lambda token: self.client.search_logged_models(
                        experiment_ids=[run.info.experiment_id],
                        filter_string=f"name = '{MODEL_ARTIFACT}'",
                        page_token=token,
                    )
                )
                if m.source_run_id == run_id
            ]
        if not logged:
            raise PermanentError(
                f"run {run_id} has no model to register: no '{MODEL_ARTIFACT}' artifact and "
                f"no logged model named '{MODEL_ARTIFACT}'"
            )
        newest = max(logged, key=lambda m: m.creation_timestamp)
        # Its folder, not ``models:/<id>``: the registry resolves that through MLflow's
        # process-wide tracking store rather than this client's.
        return str(newest.artifact_location), str(newest.model_id)

    def _ensure_registered_model(self, name: str) -> None:
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise

    def _search(self, filter_string: str) -> list[Any]:
        with mlflow_errors("searching model versions"):
            return list(
                _pages(
                    lambda token: self.client.search_model_versions(
                        filter_string=filter_string, page_token=token
                    )
                )
            )


def _pages(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def _record(version: Any, *, created: bool) -> ModelVersion:
    return ModelVersion(
        name=version.name,
        version=str(version.version),
        source=version.source or "",
        run_id=version.run_id or "",
        created=created,
    )


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
