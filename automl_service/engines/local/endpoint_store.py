"""The records of the local online endpoints: each endpoint, its deployments and their
states, in one SQLite file (``endpoints.db`` in ``local.data_dir``).

A deployment is ``ready`` once its model has been loaded and checked, ``live`` while it
takes the endpoint's traffic, ``retired`` once replaced. ``EndpointStore.switch`` makes a
ready deployment live in one transaction, deciding inside it, so two workers racing cannot
both win. The deployer (``deployer.py``) writes these records and the scoring server
(``serving.py``) checks them on every call, reading them again whenever the file changed
(``endpoint_cache.py``).
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

from ...errors import PermanentError
from ...metrics import Goal
from ...promotion import Verdict
from ...sqlite_db import ensure_schema, transaction

#: The endpoint records, in ``local.data_dir``.
ENDPOINTS_FILE = "endpoints.db"

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
