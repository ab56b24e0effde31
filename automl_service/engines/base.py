"""The interfaces a backend implements: jobs and runs, model registry, deployment.

Every operation is idempotent and keyed by the request (its id and job name), so the
worker can call it again after a crash at any instant without creating duplicates.
All may raise TransientError (retry later) or PermanentError (the request fails).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from ..model_ref import ModelRef
from ..request import AutoMLRequest
from ..runs import Endpoint, ModelVersion, RunRecord
from ..selection import Selection


class JobState(StrEnum):
    QUEUED = "queued"  # accepted, waiting for capacity
    RUNNING = "running"
    FINISHING = "finishing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED)


@dataclass(frozen=True)
class JobStatus:
    job_name: str
    state: JobState
    parent_run_id: str | None = None
    error: str | None = None
    best_child_run_id: str | None = None  # the engine's own pick, for comparison
    #: When the engine expects news (seconds): a local job's deadline, a free slot. None
    #: leaves the worker's growing re-check schedule (remote engines are throttled).
    recheck_after: float | None = None
    #: While it runs: trials so far, the metric and best value so far, seconds left.
    progress: dict[str, Any] | None = None


class Engine(Protocol):
    """Runs AutoML jobs and exposes their child runs."""

    name: str

    def ensure_job(self, request: AutoMLRequest) -> JobStatus:
        """Get or create the job named ``request.job_name``; never a second one.
        Non-blocking: returns as soon as the job is accepted."""
        ...

    def job_status(self, job_name: str) -> JobStatus | None:
        """The job's state, or None when no such job exists."""
        ...

    def child_runs(self, job_name: str) -> list[RunRecord]:
        """Every child run of the job, in as few calls as the store allows."""
        ...

    def cancel_job(self, job_name: str, reason: str) -> None:
        """Stop the job for good (its training ends, it is never started again), or see
        that it never starts when it does not exist yet. Idempotent; a job that already
        ended is left as it is."""
        ...

    def check(self) -> None:
        """Raise if the backend cannot be reached (readiness)."""
        ...


class Registry(Protocol):
    """A model registry."""

    def register(self, request: AutoMLRequest, selection: Selection) -> ModelVersion:
        """Register the winner's model, tagged with the request id, job, run and metric.
        If a version tagged with this request id exists, return it instead."""
        ...

    def find(self, request: AutoMLRequest) -> ModelVersion | None:
        """The version registered for this request, if any."""
        ...


@dataclass(frozen=True)
class LocalModel:
    """A registered model version's MLflow model folder on this machine."""

    name: str
    version: str
    path: Path


class ModelFiles(Protocol):
    """Registered models as MLflow model folders on this machine, for scoring here."""

    def fetch(self, ref: ModelRef) -> LocalModel:
        """The version ``ref`` names (its latest when it names none), with a local path
        to its MLflow model folder (fetched once, then kept, where the registry is
        remote). Raises InvalidRequest when the model, version or alias does not exist,
        TransientError when the registry is busy or unreachable, PermanentError when
        the model's files cannot be had."""
        ...


class Deployer(Protocol):
    """Puts a registered model behind an online endpoint."""

    def deploy(self, request: AutoMLRequest, model: ModelVersion, metric_value: float) -> Endpoint:
        """Create or update the endpoint named in the request; re-applying is a no-op.
        May raise NotReady while the deployment provisions."""
        ...


@dataclass
class Backend:
    """The concrete parts a worker drives; built from settings in ``backends.py``."""

    engine: Engine
    registry: Registry
    deployer: Deployer | None = None
    #: Registered models' files for scoring on this machine (``automl-service predict``).
    model_files: ModelFiles | None = None
    #: The version of a remote data reference, for the data's fingerprint (see
    #: ``fingerprint.RemoteVersions``); None where the backend reads local files only.
    data_versions: Callable[[str], str | None] | None = None
