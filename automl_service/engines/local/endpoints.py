"""Local online endpoints: blue/green deployment of registered models, recorded in SQLite.

An endpoint has one live deployment. A deployment is named after the model version it
serves (``<model name>-v<version>``), so deploying the same version again finds it live
and changes nothing. ``LocalDeployer.deploy`` goes through these steps, each idempotent:

1. the target deployment already live: nothing to do (a retirement cut short is finished);
2. with "only if better", the live deployment's metric is compared first, and a new model
   that is not strictly better leaves the endpoint as it is;
3. the new deployment is made ready: its model is loaded from the registry and scores a
   small sample (the model's input example, else the first rows of the training table);
4. traffic switches to it in one SQLite transaction (the comparison is made again inside
   it, so two workers racing cannot let a worse model win);
5. the previous deployment is retired.

``automl-service serve`` (``serving.ScoringServer``) reads the same records on every call,
so a switch is picked up without a restart.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from ...errors import PermanentError
from ...http_thread import local_url
from ...logs import get_logger
from ...metrics import Goal, Task
from ...promotion import Verdict, compare_values
from ...request import AutoMLRequest
from ...runs import Endpoint, ModelVersion
from ...settings import LocalSettings
from ...sqlite_db import ensure_schema, transaction
from .mlflow_errors import mlflow_errors

log = get_logger(__name__)

#: The endpoint records, in ``local.data_dir``.
ENDPOINTS_FILE = "endpoints.db"

#: Rows of the training table scored before a deployment takes traffic.
SAMPLE_ROWS = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoint_deployments (
    endpoint TEXT NOT NULL,
    deployment TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_uri TEXT NOT NULL,
    metric TEXT NOT NULL,
    metric_value REAL,
    goal TEXT NOT NULL,
    input_columns TEXT NOT NULL,
    request_id TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    live_since REAL,
    retired_at REAL,
    PRIMARY KEY (endpoint, deployment)
);
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY,
    deployment TEXT NOT NULL,
    previous_deployment TEXT,
    updated_at REAL NOT NULL
);
"""

_DEPLOYMENT_COLUMNS = (
    "endpoint, deployment, model_name, model_version, model_uri, metric, metric_value, goal,"
    " input_columns, request_id, state, created_at, live_since, retired_at"
)


class DeploymentState(StrEnum):
    READY = "ready"  # loaded and checked, not taking traffic
    LIVE = "live"  # takes the endpoint's traffic
    RETIRED = "retired"  # replaced; no longer served


@dataclass(frozen=True)
class DeploymentRecord:
    """One deployment of an endpoint: which model version it serves and how it scored."""

    endpoint: str
    name: str
    model_name: str
    model_version: str
    model_uri: str  # models:/<name>/<version>
    metric: str
    metric_value: float | None
    goal: Goal
    input_columns: tuple[str, ...]  # empty when unknown
    request_id: str
    state: DeploymentState
    created_at: float
    live_since: float | None = None
    retired_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        """The record as JSON-ready values (a non-finite metric value as null)."""
        value = self.metric_value
        return {
            "deployment": self.name,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "model_uri": self.model_uri,
            "metric": self.metric,
            "metric_value": value if value is not None and math.isfinite(value) else None,
            "goal": self.goal.value,
            "input_columns": list(self.input_columns),
            "request_id": self.request_id,
            "state": self.state.value,
            "created_at": self.created_at,
            "live_since": self.live_since,
            "retired_at": self.retired_at,
        }


@dataclass(frozen=True)
class EndpointRecord:
    """A named endpoint, its live deployment and the one it replaced."""

    name: str
    live: DeploymentRecord
    previous_deployment: str | None
    updated_at: float

    @property
    def deployment(self) -> str:
        return self.live.name


# Pure decisions --------------------------------------------------------------------------


def deployment_name(model_name: str, version: str) -> str:
    """The deployment serving ``model_name`` version ``version``: fixed by the version, so
    re-applying a deployment finds it."""
    return f"{model_name}-v{version}"


def model_uri(model_name: str, version: str) -> str:
    return f"models:/{model_name}/{version}"


def scoring_uri(host: str, port: int, endpoint: str) -> str:
    """Where a client on this host scores ``endpoint`` served on ``host:port``."""
    return local_url(host, port, f"/endpoints/{endpoint}/score")


def compare_with_live(
    new_value: float, metric: str, goal: Goal, live: DeploymentRecord | None
) -> Verdict:
    """Whether a model with ``metric = new_value`` should replace the live deployment.

    Only a strictly better value replaces a comparable live one. No live deployment, or a
    live one without a finite value of the same metric, is replaced, and the reason says so.
    """
    if live is None:
        return Verdict(True, "no live deployment; promoted")
    value = live.metric_value
    if live.metric != metric or value is None or not math.isfinite(value):
        return Verdict(True, f"live deployment {live.name} has no {metric} to compare; replaced")
    return compare_values(new_value, value, metric, goal, live.name)


# The records -----------------------------------------------------------------------------


class EndpointStore:
    """Endpoints and their deployments in the SQLite file ``path``; safe with several
    processes. Every call is one short transaction and raises TransientError when the
    database stays locked past the busy timeout."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        ensure_schema(self.path, _SCHEMA)

    def get(self, name: str) -> EndpointRecord | None:
        """The endpoint ``name`` with its live deployment, or None."""
        with transaction(self.path) as conn:
            return _read_endpoint(conn, name)

    def endpoints(self) -> list[EndpointRecord]:
        """Every endpoint, by name."""
        with transaction(self.path) as conn:
            names = [row[0] for row in conn.execute("SELECT name FROM endpoints ORDER BY name")]
            found = [_read_endpoint(conn, name) for name in names]
        return [record for record in found if record is not None]

    def deployments(self, endpoint: str) -> list[DeploymentRecord]:
        """Every deployment the endpoint ever had, oldest first."""
        with transaction(self.path) as conn:
            rows = conn.execute(
                f"SELECT {_DEPLOYMENT_COLUMNS} FROM endpoint_deployments WHERE endpoint = ?"
                " ORDER BY created_at, deployment",
                (endpoint,),
            ).fetchall()
        return [_deployment(row) for row in rows]

    def put_ready(self, record: DeploymentRecord) -> None:
        """Record a deployment that passed its check. Idempotent; a live deployment stays
        live, a retired one becomes ready again."""
        with transaction(self.path, immediate=True) as conn:
            conn.execute(
                f"INSERT INTO endpoint_deployments ({_DEPLOYMENT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)"
                " ON CONFLICT (endpoint, deployment) DO UPDATE SET"
                " state = CASE WHEN state = 'live' THEN state ELSE excluded.state END,"
                " retired_at = CASE WHEN state = 'live' THEN retired_at ELSE NULL END",
                (
                    record.endpoint,
                    record.name,
                    record.model_name,
                    record.model_version,
                    record.model_uri,
                    record.metric,
                    record.metric_value,
                    record.goal.value,
                    json.dumps(list(record.input_columns)),
                    record.request_id,
                    DeploymentState.READY.value,
                    record.created_at,
                ),
            )

    def switch(
        self,
        endpoint: str,
        deployment: str,
        decide: Callable[[DeploymentRecord | None], Verdict],
        *,
        now: float | None = None,
    ) -> tuple[Verdict, str | None]:
        """Atomically make the ready ``deployment`` the endpoint's live one, if
        ``decide(live deployment or None)`` says so. Returns the verdict and the deployment
        that was live before (None for a new endpoint). Already live: a promoting verdict
        and no change."""
        now = time.time() if now is None else now
        with transaction(self.path, immediate=True) as conn:
            current = _read_endpoint(conn, endpoint)
            if current is not None and current.deployment == deployment:
                return Verdict(True, f"{deployment} is already live"), current.previous_deployment
            verdict = decide(current.live if current else None)
            if not verdict.promote:
                return verdict, current.deployment if current else None
            found = conn.execute(
                "UPDATE endpoint_deployments SET state = ?, live_since = ?, retired_at = NULL"
                " WHERE endpoint = ? AND deployment = ?",
                (DeploymentState.LIVE.value, now, endpoint, deployment),
            ).rowcount
            if not found:
                raise PermanentError(f"deployment {deployment} of {endpoint} was never made ready")
            previous = current.deployment if current else None
            conn.execute(
                "INSERT INTO endpoints (name, deployment, previous_deployment, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                " deployment = excluded.deployment,"
                " previous_deployment = excluded.previous_deployment,"
                " updated_at = excluded.updated_at",
                (endpoint, deployment, previous, now),
            )
        return verdict, previous

    def retire(self, endpoint: str, deployment: str, *, now: float | None = None) -> bool:
        """Mark ``deployment`` retired unless it is live. Idempotent; True when it changed."""
        now = time.time() if now is None else now
        with transaction(self.path, immediate=True) as conn:
            changed = conn.execute(
                "UPDATE endpoint_deployments SET state = ?, retired_at = ?"
                " WHERE endpoint = ? AND deployment = ? AND state != ?"
                " AND deployment NOT IN (SELECT deployment FROM endpoints WHERE name = ?)",
                (
                    DeploymentState.RETIRED.value,
                    now,
                    endpoint,
                    deployment,
                    DeploymentState.RETIRED.value,
                    endpoint,
                ),
            ).rowcount
        return bool(changed)


def _read_endpoint(conn: sqlite3.Connection, name: str) -> EndpointRecord | None:
    row = conn.execute(
        "SELECT deployment, previous_deployment, updated_at FROM endpoints WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        return None
    live = conn.execute(
        f"SELECT {_DEPLOYMENT_COLUMNS} FROM endpoint_deployments"
        " WHERE endpoint = ? AND deployment = ?",
        (name, row[0]),
    ).fetchone()
    if live is None:
        return None
    return EndpointRecord(name, _deployment(live), row[1], float(row[2]))


def _deployment(row: tuple[Any, ...]) -> DeploymentRecord:
    return DeploymentRecord(
        endpoint=row[0],
        name=row[1],
        model_name=row[2],
        model_version=row[3],
        model_uri=row[4],
        metric=row[5],
        metric_value=None if row[6] is None else float(row[6]),
        goal=Goal(row[7]),
        input_columns=tuple(json.loads(row[8])),
        request_id=row[9],
        state=DeploymentState(row[10]),
        created_at=float(row[11]),
        live_since=None if row[12] is None else float(row[12]),
        retired_at=None if row[13] is None else float(row[13]),
    )


# Models ----------------------------------------------------------------------------------


def load_registered(tracking_uri: str, name: str, version: str) -> Any:
    """The pyfunc model of registered ``name`` version ``version`` in the store at
    ``tracking_uri`` (never MLflow's process-wide one). Blocking. Raises PermanentError
    when the version does not exist or cannot be loaded, TransientError when the store is
    busy or unreachable."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with mlflow_errors(f"finding model {name} version {version}"):
        source = client.get_model_version_download_uri(name, version)
    try:
        return mlflow.pyfunc.load_model(source)
    except MlflowException as exc:
        raise PermanentError(f"model {name} version {version} cannot be loaded: {exc}") from exc
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        raise PermanentError(
            f"model {name} version {version} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from exc


def input_columns(model: Any) -> tuple[str, ...]:
    """The named input columns of a model's signature, or () when it has none."""
    try:
        schema = model.metadata.get_input_schema()
    except AttributeError:
        return ()
    if schema is None or not schema.has_input_names():
        return ()
    return tuple(str(name) for name in schema.input_names())


def input_example(model: Any) -> pd.DataFrame | None:
    """The model's saved input example as a table, or None."""
    example = getattr(model, "input_example", None)
    if example is None:
        return None
    try:
        frame = pd.DataFrame(example)
    except (ValueError, TypeError):
        return None
    return frame if len(frame) else None


def training_sample(request: AutoMLRequest) -> pd.DataFrame | None:
    """The first rows of the request's training table without the target, or None when it
    cannot be read. Forecasting models score future times, so they get none."""
    from .datasets import load_table

    try:
        table = load_table(request.training_data)
    except Exception as exc:  # a sample is a bonus: without it the check only loads
        log.info("endpoint.no_sample", reason=str(exc))
        return None
    features = table.drop(columns=[request.target_column_name], errors="ignore")
    return features.head(SAMPLE_ROWS)


# The deployer ----------------------------------------------------------------------------


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
            return self._endpoint(name, target, f"{target} is already live")

        def decide(live: DeploymentRecord | None) -> Verdict:
            if spec.only_if_better:
                return compare_with_live(metric_value, metric, goal, live)
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
        self._retire_previous(name, previous)
        return self._endpoint(name, target, verdict.reason)

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
            try:
                loaded.predict(sample)
            except Exception as exc:
                raise PermanentError(
                    f"deployment {target} failed its check: the model could not score "
                    f"{len(sample)} sample rows: {type(exc).__name__}: {exc}"
                ) from exc
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
