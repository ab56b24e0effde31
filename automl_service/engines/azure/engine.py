"""``AzureEngine``: AutoML jobs on Azure ML, child runs from the workspace's MLflow server."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ...azure_retry import RetryPolicy, call, get_or_none
from ...errors import PermanentError, TransientError
from ...logs import get_logger
from ...request import AutoMLRequest
from ...runs import RunRecord, RunStatus
from ...scan import scan_child_runs
from ...tags import BEST_CHILD_TAG, TEST_METRIC_PREFIX
from ..base import JobState, JobStatus
from .data import DataResolver
from .jobs import build_automl_job
from .status import PollSchedule, iteration_filter, map_status
from .tracking import PAGE_SIZE, WorkspaceTracking

log = get_logger(__name__)


@dataclass
class _Seen:
    status: JobStatus
    next_poll_at: float


class AzureEngine:
    """Runs AutoML jobs in an Azure ML workspace.

    ``ensure_job`` is get-or-create by the request's job name (a fresh job object is
    built only after a 404, so there is never a second job). ``job_status`` fetches the job
    at most once per ``PollSchedule`` interval (a tenth of the job's age, 15 s to 5 min) and
    answers from memory in between. All calls are retried on transient failures; what
    still fails raises TransientError, and permanent refusals raise PermanentError.
    """

    name = "azure"

    def __init__(
        self,
        ml_client: Any,
        *,
        tracking: WorkspaceTracking | None = None,
        tracking_factory: Callable[[str], WorkspaceTracking] | None = None,
        compute: str | None = None,
        resolve_data: DataResolver | None = None,
        held_out: Callable[[AutoMLRequest], AutoMLRequest] | None = None,
        policy: RetryPolicy | None = None,
        poll: PollSchedule | None = None,
        clock: Callable[[], float] = time.time,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._client = ml_client
        self._tracking = tracking
        self._tracking_factory = tracking_factory or (
            lambda uri: WorkspaceTracking(uri, getattr(ml_client, "_credential", None))
        )
        self._compute = compute
        self._resolve_data = resolve_data
        self._held_out = held_out
        self._policy = policy
        self._poll = poll or PollSchedule()
        self._clock = clock
        self._page_size = page_size
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    # Engine interface -----------------------------------------------------------------

    def ensure_job(self, request: AutoMLRequest) -> JobStatus:
        """Get the job named ``request.job_name`` or submit a fresh one. Non-blocking.

        Called on every re-check: between poll-schedule instants (and once the job has
        ended) it answers from memory without a call.
        """
        name = request.job_name
        cached = self._cached(name)
        if cached is not None:
            return cached
        job = get_or_none("jobs.get", self._client.jobs.get, name, policy=self._policy)
        if job is None:
            job = self._submit(request)
        return self._observe(job)

    def job_status(self, job_name: str) -> JobStatus | None:
        """The job's state (throttled like ``ensure_job``), or None if there is none."""
        cached = self._cached(job_name)
        if cached is not None:
            return cached
        job = get_or_none("jobs.get", self._client.jobs.get, job_name, policy=self._policy)
        return None if job is None else self._observe(job)

    def child_runs(self, job_name: str) -> list[RunRecord]:
        """The job's training iterations (``<job>_<n>``), one paginated search.

        Costs one ``get_run`` for the parent plus ceil(children / 1000) searches, and one
        search more for the test run of the iteration the parent names as its best.
        """
        tracking = self.tracking()
        parent = tracking.get_run(job_name)
        if parent is None:
            raise TransientError(f"run {job_name} is not yet on the tracking server")
        records = scan_child_runs(
            tracking,
            [parent.info.experiment_id],
            job_name,
            page_size=self._page_size,
            keep=iteration_filter(job_name),
        )
        best = parent.data.tags.get(BEST_CHILD_TAG)
        if best is None or not any(record.run_id == best for record in records):
            return records
        # With test data, Azure AutoML scores its own best iteration on it in a test run,
        # a child of that iteration (``best_run.get_children(type="automl.model_test")``
        # in the v1 SDK's documentation): its metrics become the iteration's ``test_``
        # metrics. One search more; the other iterations have no test run.
        tests = scan_child_runs(
            tracking,
            [parent.info.experiment_id],
            best,
            status=RunStatus.FINISHED.value,
            page_size=self._page_size,
        )
        if not tests:
            return records
        tested = {f"{TEST_METRIC_PREFIX}{name}": v for name, v in tests[0].metrics.items()}
        return [
            replace(r, metrics={**r.metrics, **tested}) if r.run_id == best else r for r in records
        ]

    def cancel_job(self, job_name: str, reason: str) -> None:
        """Ask Azure ML to cancel the job (without waiting for it to stop). A job not
        submitted yet or already ended is left alone; the worker never submits the job of
        a canceled request. Azure keeps no reason with a cancel: it is logged here."""
        job = get_or_none("jobs.get", self._client.jobs.get, job_name, policy=self._policy)
        if job is None or job.status == "CancelRequested" or map_status(job.status).terminal:
            return
        call(
            "jobs.begin_cancel",
            self._client.jobs.begin_cancel,
            job_name,
            polling=False,
            policy=self._policy,
        )
        with self._lock:
            self._seen.pop(job_name, None)
        log.info("azure.job_cancel_requested", job_name=job_name, reason=reason)

    def check(self) -> None:
        """Raise TransientError/PermanentError when the workspace cannot be read."""
        call(
            "workspaces.get",
            self._client.workspaces.get,
            self._client.workspace_name,
            policy=self._policy,
        )

    # Internals -------------------------------------------------------------------------

    def tracking(self) -> WorkspaceTracking:
        """The workspace's MLflow client (its URI read from the workspace once)."""
        if self._tracking is None:
            workspace = call(
                "workspaces.get",
                self._client.workspaces.get,
                self._client.workspace_name,
                policy=self._policy,
            )
            uri = workspace.mlflow_tracking_uri
            if not uri:
                raise PermanentError("the workspace reports no MLflow tracking URI")
            self._tracking = self._tracking_factory(uri)
        return self._tracking

    def _submit(self, request: AutoMLRequest) -> Any:
        if self._held_out is not None:  # "only if better" rows set apart (held_out.py)
            request = self._held_out(request)
        try:
            fresh = build_automl_job(
                request, compute=self._compute, resolve_data=self._resolve_data
            )
        except PermanentError:
            raise
        except Exception as exc:  # the SDK refuses the settings (e.g. an unknown algorithm)
            raise PermanentError(
                f"the request is not a valid Azure AutoML job: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            job = call(
                "jobs.create_or_update",
                self._client.jobs.create_or_update,
                fresh,
                policy=self._policy,
            )
        except PermanentError:
            # Another worker may have created it between our get and our put.
            job = get_or_none(
                "jobs.get", self._client.jobs.get, request.job_name, policy=self._policy
            )
            if job is None:
                raise
        log.info("azure.job_submitted", job_name=request.job_name)
        return job

    def _cached(self, job_name: str) -> JobStatus | None:
        with self._lock:
            seen = self._seen.get(job_name)
        if seen is not None and (seen.status.state.terminal or self._clock() < seen.next_poll_at):
            return seen.status
        return None

    def _observe(self, job: Any) -> JobStatus:
        """The job's status (with its error or the engine's best run once it ended),
        remembered until the next poll instant."""
        name = job.name
        state = map_status(job.status)
        error = self._job_error(name) if state is JobState.FAILED else None
        if state is JobState.CANCELED:
            error = f"job {name} was canceled"
        best, known = (None, True)
        if state is JobState.COMPLETED:
            best, known = self._best_child_tag(name)
        status = JobStatus(name, state, parent_run_id=name, error=error, best_child_run_id=best)
        now = self._clock()
        age = max(0.0, now - _created_at(job, now))
        if known:  # an ended job whose best-run tag could not be read is asked again
            with self._lock:
                self._seen[name] = _Seen(status, now + self._poll.interval(age))
        log.info("azure.job_status", job_name=name, azure_status=job.status, state=state.value)
        return status

    def _job_error(self, job_name: str) -> str:
        """The failed job's error from run history; a generic reason when unavailable."""
        try:
            details = call(
                "run details",
                self._client.jobs._runs_operations.get_run_details,
                job_name,
                policy=self._policy,
            )
            error = getattr(getattr(details, "error", None), "error", None)
            if error is not None and error.message:
                return f"{error.code or 'Error'}: {error.message}"
        except Exception as exc:  # the reason is a courtesy; the state is what counts
            log.warning("azure.job_error_unavailable", job_name=job_name, error=str(exc))
        return f"job {job_name} ended Failed"

    def _best_child_tag(self, job_name: str) -> tuple[str | None, bool]:
        """The parent's ``automl_best_child_run_id`` and whether the lookup succeeded."""
        try:
            parent = self.tracking().get_run(job_name)
        except TransientError as exc:
            log.warning("azure.best_child_unavailable", job_name=job_name, error=str(exc))
            return None, False
        if parent is None:
            return None, False
        tag: str | None = parent.data.tags.get(BEST_CHILD_TAG)
        return tag, True


def _created_at(job: Any, default: float) -> float:
    context = getattr(job, "creation_context", None)
    created = getattr(context, "created_at", None)
    if isinstance(created, dt.datetime):
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        return created.timestamp()
    return default
