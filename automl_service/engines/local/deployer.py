"""Local online endpoints: blue/green deployment of registered models, recorded in SQLite.

An endpoint has one live deployment. A deployment is named after the model version it
serves (``<model name>-v<version>``), so deploying the same version again finds it live
and changes nothing. ``LocalDeployer.deploy`` goes through these steps, each idempotent:

1. the target deployment already live: nothing to do (a retirement cut short is finished);
2. with "only if better", the new model and the live one are scored on the same held-out
   rows (the request's test rows, or the share the trainer set apart for this) with the
   selection metric, and a new model not better by more than ``min_improvement`` leaves
   the endpoint as it is (forecasts compare the values recorded at training);
3. the new deployment is made ready: its model is loaded from the registry and scores a
   small sample (the model's input example, else the first rows of the training table);
4. traffic switches to it in one SQLite transaction (the comparison is made again inside
   it, so two workers racing cannot let a worse model win);
5. the served version gets the registry alias ``champion``; the previous deployment is
   retired.

The records are kept by ``endpoint_store.EndpointStore``; ``automl-service serve``
(``serving.ScoringServer``) reads them on every call, so a switch is picked up without a
restart.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ...errors import PermanentError, TransientError
from ...logs import get_logger
from ...metrics import Task
from ...promotion import Verdict, compare_scores
from ...request import AutoMLRequest
from ...runs import Endpoint, ModelVersion
from ...settings import LocalSettings
from ...tags import CHAMPION_ALIAS
from .endpoint_decisions import compare_with_live, deployment_name, model_uri, scoring_uri
from .endpoint_store import ENDPOINTS_FILE, DeploymentRecord, DeploymentState, EndpointStore
from .model_loading import input_columns, input_example, load_registered, training_sample
from .testset import evaluation_rows, score, score_or_error

log = get_logger(__name__)


class LocalDeployer:
    """Implements ``automl_service.engines.base.Deployer`` for local endpoints.

    Blocking: ``deploy`` loads the model and checks it before it returns (seconds); it never
    raises NotReady. Idempotent and keyed by the model version (see the module docstring).
    Raises PermanentError when the model cannot be loaded or fails its check (the endpoint
    keeps its live deployment), TransientError when the registry or the endpoint records are
    busy or unreachable.
    """

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.store = EndpointStore(settings.data_dir / ENDPOINTS_FILE)

    def scoring_uri(self, endpoint: str) -> str:
        return scoring_uri(self.settings.endpoint_host, self.settings.endpoint_port, endpoint)

    def deploy(self, request: AutoMLRequest, model: ModelVersion, metric_value: float) -> Endpoint:
        """Make ``model`` the live deployment of the request's endpoint (see the module
        docstring); returns the endpoint, with ``promoted=False`` and the reason when "only
        if better" left it as it was."""
        spec = request.deployment
        if spec is None:
            raise PermanentError("the request asks for no deployment")
        name = spec.endpoint_name
        target = deployment_name(model.name, model.version)
        metric, goal = request.selection_metric, request.selection_goal

        current = self.store.get(name)
        if current is not None and current.deployment == target:
            self._retire_previous(name, current.previous_deployment)
            self._crown(model)
            return self._endpoint(name, target, f"{target} is already live")

        margin = spec.min_improvement
        measured: tuple[str, Verdict] | None = None
        if spec.only_if_better and current is not None and current.live is not None:
            measured = self._on_the_same_rows(request, model, current.live, margin)

        def decide(live: DeploymentRecord | None) -> Verdict:
            if spec.only_if_better:
                if measured is not None and live is not None and live.name == measured[0]:
                    return measured[1]
                return compare_with_live(metric_value, metric, goal, live, margin=margin)
            if live is None:
                return Verdict(True, "new endpoint")
            return Verdict(True, f"replaces {live.name}")

        if current is not None:
            early = decide(current.live)
            if not early.promote:
                log.info(
                    "endpoint.kept", endpoint=name, live=current.deployment, reason=early.reason
                )
                return self._endpoint(name, current.deployment, early.reason, promoted=False)

        self.store.put_ready(self.make_ready(request, model, metric_value, target))
        verdict, previous = self.store.switch(name, target, decide)
        if not verdict.promote:
            log.info("endpoint.kept", endpoint=name, live=previous, reason=verdict.reason)
            return self._endpoint(name, previous or target, verdict.reason, promoted=False)
        log.info("endpoint.switched", endpoint=name, live=target, previous=previous)
        self._crown(model)
        self._retire_previous(name, previous)
        return self._endpoint(name, target, verdict.reason)

    def rollback(self, endpoint: str) -> Endpoint:
        """Put the endpoint's previous deployment back, blue/green as a deploy does: its
        model is loaded and checked again, all traffic moves to it, the deployment rolled
        back from is retired, and the ``champion`` alias moves back. Rolling back twice
        returns to where it was. PermanentError for an unknown endpoint or one with no
        previous deployment."""
        current = self.store.get(endpoint)
        if current is None:
            raise PermanentError(f"no endpoint {endpoint!r}")
        previous = current.previous_deployment
        record = next((d for d in self.store.deployments(endpoint) if d.name == previous), None)
        if previous is None or record is None:
            raise PermanentError(f"endpoint {endpoint} has no previous deployment to go back to")
        loaded = load_registered(self.settings.mlflow_uri, record.model_name, record.model_version)
        example = input_example(loaded)
        if example is not None:
            check_scores(loaded, example, f"{previous} failed its check and stays retired")
        self.store.put_ready(record)
        verdict, left = self.store.switch(
            endpoint, previous, lambda live: Verdict(True, f"rolled back from {current.deployment}")
        )
        log.info("endpoint.rolled_back", endpoint=endpoint, live=previous, previous=left)
        self._crown(ModelVersion(record.model_name, record.model_version))
        self._retire_previous(endpoint, left)
        return self._endpoint(endpoint, previous, verdict.reason)

    def _on_the_same_rows(
        self, request: AutoMLRequest, model: ModelVersion, live: DeploymentRecord, margin: float
    ) -> tuple[str, Verdict] | None:
        """The new model and the live one scored on the request's held-out rows with the
        selection metric: (the live deployment's name, the verdict). None when there are
        no such rows (forecasts) or the new model cannot give the metric there: the
        recorded values are compared instead."""
        rows = evaluation_rows(request)
        if rows is None:
            return None
        X, y = rows
        metric, goal = request.selection_metric, request.selection_goal
        uri = self.settings.mlflow_uri
        new = score(load_registered(uri, model.name, model.version).predict, request.task, X, y)
        old: dict[str, float] | Exception
        try:
            loaded = load_registered(uri, live.model_name, live.model_version)
        except Exception as exc:  # a live model that cannot be loaded is stale
            old = exc
        else:
            old = score_or_error(loaded, request.task, X, y)
        where = f"on the same {len(y)} held-out rows"
        verdict = compare_scores(new, old, metric, goal, live.name, margin=margin, where=where)
        if verdict is None:
            return None
        log.info("endpoint.compared", live=live.name, reason=verdict.reason)
        return live.name, verdict

    def _crown(self, model: ModelVersion) -> None:
        """Give the version the endpoint now serves the registry alias ``champion``."""
        uri = self.settings.mlflow_uri
        try:
            MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
                model.name, CHAMPION_ALIAS, model.version
            )
        except MlflowException as exc:
            raise TransientError(f"cannot set the champion alias: {exc}") from exc

    def make_ready(
        self, request: AutoMLRequest, model: ModelVersion, metric_value: float, target: str
    ) -> DeploymentRecord:
        """Load the model and score a sample; the record of a deployment ready for traffic
        (nothing is written). Blocking. Raises PermanentError when the model cannot be
        loaded or cannot score the sample, TransientError when the registry is busy."""
        if request.deployment is None:
            raise PermanentError("the request asks for no deployment")
        loaded = load_registered(self.settings.mlflow_uri, model.name, model.version)
        sample = input_example(loaded)
        if sample is None and request.task is not Task.FORECASTING:
            sample = training_sample(request)
        columns = input_columns(loaded)
        if not columns and sample is not None:
            columns = tuple(str(c) for c in sample.columns)
        if sample is not None:
            failure = (
                f"deployment {target} failed its check: the model could not score "
                f"{len(sample)} sample rows"
            )
            check_scores(loaded, sample, failure)
        else:
            log.info("endpoint.check_without_sample", deployment=target)
        return DeploymentRecord(
            endpoint=request.deployment.endpoint_name,
            name=target,
            model_name=model.name,
            model_version=model.version,
            model_uri=model_uri(model.name, model.version),
            metric=request.selection_metric,
            metric_value=metric_value if math.isfinite(metric_value) else None,
            goal=request.selection_goal,
            input_columns=columns,
            request_id=request.id,
            state=DeploymentState.READY,
            created_at=time.time(),
        )

    def _retire_previous(self, endpoint: str, previous: str | None) -> None:
        if previous and self.store.retire(endpoint, previous):
            log.info("endpoint.retired", endpoint=endpoint, deployment=previous)

    def _endpoint(
        self, name: str, deployment: str, reason: str, *, promoted: bool = True
    ) -> Endpoint:
        return Endpoint(
            name=name,
            deployment=deployment,
            scoring_uri=self.scoring_uri(name),
            promoted=promoted,
            reason=reason,
        )


def check_scores(loaded: Any, sample: pd.DataFrame, failure: str) -> None:
    """Raise PermanentError (``failure``, then the error) when ``loaded`` cannot score
    ``sample``: the check a deployment passes before it takes traffic."""
    try:
        loaded.predict(sample)
    except Exception as exc:
        raise PermanentError(f"{failure}: {type(exc).__name__}: {exc}") from exc
