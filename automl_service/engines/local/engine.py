"""LocalEngine: AutoML jobs trained by a detached trainer process, tracked in MLflow."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ...errors import TransientError
from ...logs import get_logger
from ...redact import split_credentials
from ...request import AutoMLRequest
from ...rest_tracking import scan_tracking_store
from ...runs import RunRecord, RunStatus
from ...scan import scan_child_runs
from ...settings import LocalSettings
from ...tags import BEST_CHILD_TAG, DATA_TAG, JOB_TAG, REQUEST_TAG
from ..base import JobState, JobStatus
from .azure_only import refuse_azure_only
from .layout import JobDir, TrainerConfig, open_private, write_atomic
from .locks import free_slots, is_locked, locked, pid_alive
from .threshold import refuse_misplaced_threshold
from .trials import ERROR_TAG

log = get_logger(__name__)

TASK_TAG = "automl_service.task"
#: MLflow's run description: the request's ``description``.
NOTE_TAG = "mlflow.note.content"
#: The request's ``display_name`` (the run keeps the job's name: it is found by it).
DISPLAY_TAG = "automl_service.display_name"

#: How long ensure_job waits for a new trainer to say whether it got a slot.
SPAWN_WAIT_SECONDS = 20.0
#: A job waiting for a slot is re-checked this often; one not checked for
#: WAITING_STALE_SECONDS has left the line (its request ended or went away).
QUEUED_RECHECK_SECONDS = 2.0
WAITING_STALE_SECONDS = 60.0
#: How long cancel_job waits for a killed trainer to let go of its job.
KILL_WAIT_SECONDS = 10.0
#: A running job is re-checked every LONGEST_RUNNING_RECHECK_SECONDS (its progress is
#: read then), at the end of its search or its budget if sooner, then every
#: FINISHING_RECHECK_SECONDS while it finishes (ensemble, refits, logging)...
FINISHING_RECHECK_SECONDS = 1.0
LONGEST_RUNNING_RECHECK_SECONDS = 5.0
#: ...a moment after the search's end, so that the trainer has said it is finishing.
SEARCH_END_SLACK_SECONDS = 0.2


def recheck_in(now: float, deadline: float | None, stage: object, search_ends_at: object) -> float:
    """Seconds until a running job is looked at again (pure): every few seconds while it
    searches, aimed at the end of its search and at its deadline, then every second once
    the trainer says it is finishing or either moment has passed, so that its end is
    seen within about a second."""
    ends = search_ends_at if isinstance(search_ends_at, (int, float)) else None
    moments = [m for m in (ends, deadline) if m is not None]
    if stage == "finishing" or any(m <= now for m in moments):
        return FINISHING_RECHECK_SECONDS
    wait = LONGEST_RUNNING_RECHECK_SECONDS
    for moment in moments:
        wait = min(wait, max(FINISHING_RECHECK_SECONDS, moment - now + SEARCH_END_SLACK_SECONDS))
    return wait


class LocalEngine:
    """Runs each job in its own trainer process on this machine.

    All methods are safe to call from several workers at once and again after a crash:
    ``ensure_job`` is get-or-create under a file lock. MLflow store errors are raised as
    TransientError; a request that cannot train ends its job FAILED (not an exception).
    """

    name = "local"

    def __init__(self, settings: LocalSettings, *, python: str | None = None) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.python = python or sys.executable
        self.client = MlflowClient(tracking_uri=settings.mlflow_uri)
        self._spawned: list[subprocess.Popen[bytes]] = []

    # Engine protocol -------------------------------------------------------------------

    def ensure_job(self, request: AutoMLRequest) -> JobStatus:
        """Get or create the job and make sure a trainer runs it (or it waits for a slot).

        Returns within seconds: it waits only for a new trainer to take its locks. A
        RUNNING job whose trainer died is re-trained under the same parent run, up to
        ``max_trainer_starts`` starts in all, then ends FAILED. A request with settings
        only Azure honours, or a decision threshold without classes, is refused
        (PermanentError) before anything is created.
        """
        refuse_azure_only(request)
        refuse_misplaced_threshold(request)
        self._reap()
        job = self._job(request.job_name)
        job.path.mkdir(parents=True, exist_ok=True)
        try:
            with locked(job.create_lock):
                canceled = _read(job.canceled_file)
                if canceled is not None and job.read_config() is None:
                    return JobStatus(job.path.name, JobState.CANCELED, error=canceled)
                config = self._get_or_create(job, request)
                if canceled is not None:
                    return self._status(job, config)
                status = self._status(job, config)
                if status.state.terminal or is_locked(job.trainer_lock):
                    return self._hinted(job, config, status)
                self._count_start_crash(job)
                if job.attempts() >= self.settings.max_trainer_starts:
                    return self._give_up(job, config)
                if not self._first_in_line(job):
                    return self._hinted(job, config, self._with_state(status, JobState.QUEUED))
                job.waiting_file.unlink(missing_ok=True)
                self._spawn(job)
                return self._hinted(job, config, self._status(job, config))
        except MlflowException as exc:
            raise TransientError(f"MLflow store error: {exc}") from exc

    def job_status(self, job_name: str) -> JobStatus | None:
        """The job's state from its parent run and trainer lock; None if unknown. Read-only."""
        self._reap()
        job = self._job(job_name)
        config = job.read_config()
        if config is None:
            return None
        try:
            return self._status(job, config)
        except MlflowException as exc:
            raise TransientError(f"MLflow store error: {exc}") from exc

    def child_runs(self, job_name: str) -> list[RunRecord]:
        """Every child run of the job's parent run: one paginated search (two halves read
        at once from a tracking server)."""
        config = self._job(job_name).read_config()
        if config is None:
            return []
        try:
            return scan_tracking_store(
                self.client, self.settings.mlflow_uri, config.experiment_id, config.parent_run_id
            )
        except MlflowException as exc:
            raise TransientError(f"MLflow store error: {exc}") from exc

    def cancel_job(self, job_name: str, reason: str) -> None:
        """Mark the job canceled so that no trainer starts it again, kill its trainer's
        process group (the trainer leads one; what it started goes with it), and end its
        parent run KILLED with ``reason``, its unfinished child runs too. A job not
        created yet is never created; one that already ended is left as it is."""
        self._reap()
        job = self._job(job_name)
        job.path.mkdir(parents=True, exist_ok=True)
        try:
            with locked(job.create_lock):
                if not job.canceled_file.exists():
                    write_atomic(job.canceled_file, reason)
                job.waiting_file.unlink(missing_ok=True)
                killed = self._kill_trainer(job)
                config = job.read_config()
                if config is not None:
                    self._end_killed(config, reason)
        except MlflowException as exc:
            raise TransientError(f"MLflow store error: {exc}") from exc
        log.info("local.job_canceled", job_name=job_name, trainer_killed=killed)

    def check(self) -> None:
        """Raise TransientError if the tracking store or data directory is unusable."""
        try:
            self.client.search_experiments(max_results=1)
        except MlflowException as exc:
            raise TransientError(f"MLflow store unreachable: {exc}") from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(self.data_dir, os.W_OK):
            raise TransientError(f"data directory not writable: {self.data_dir}")

    # Parts ------------------------------------------------------------------------------

    @property
    def _slots_dir(self) -> Path:
        return self.data_dir / "slots"

    def _job(self, job_name: str) -> JobDir:
        return JobDir(self.data_dir / "jobs" / job_name)

    def _get_or_create(self, job: JobDir, request: AutoMLRequest) -> TrainerConfig:
        config = job.read_config()
        if config is not None:
            return config
        if not job.request_file.exists():
            write_atomic(job.request_file, request.model_dump_json(indent=2))
        experiment_id = self._experiment(request.experiment_name)
        parent_id = self._find_parent(experiment_id, request.job_name)
        if parent_id is None:
            run = self.client.create_run(
                experiment_id,
                run_name=request.job_name,
                tags={
                    JOB_TAG: request.job_name,
                    REQUEST_TAG: request.id,
                    TASK_TAG: request.task.value,
                    "automl_service.primary_metric": request.metric,
                    **({DATA_TAG: request.data_fingerprint} if request.data_fingerprint else {}),
                    **({NOTE_TAG: request.description} if request.description else {}),
                    **({DISPLAY_TAG: request.display_name} if request.display_name else {}),
                },
            )
            parent_id = run.info.run_id
            log.info("local.job_created", job_name=request.job_name, parent_run_id=parent_id)
        config = TrainerConfig(
            tracking_uri=split_credentials(self.settings.mlflow_uri)[0],
            parent_run_id=parent_id,
            experiment_id=experiment_id,
            slots_dir=str(self._slots_dir),
            max_concurrent_jobs=self.settings.max_concurrent_jobs,
            max_trainer_starts=self.settings.max_trainer_starts,
            timeout_seconds=request.limits.timeout_seconds,
        )
        job.write_config(config)
        return config

    def _experiment(self, name: str) -> str:
        with locked(self.data_dir / "experiments.lock"):
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return str(found.experiment_id)
            location = (self.settings.artifact_root / name).as_uri()
            return str(self.client.create_experiment(name, artifact_location=location))

    def _find_parent(self, experiment_id: str, job_name: str) -> str | None:
        runs = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{JOB_TAG}` = '{job_name}'",
            max_results=1,
            order_by=["attributes.start_time ASC"],
        )
        return str(runs[0].info.run_id) if runs else None

    def _status(self, job: JobDir, config: TrainerConfig) -> JobStatus:
        run = self.client.get_run(config.parent_run_id)
        status, tags = run.info.status, run.data.tags
        base = JobStatus(
            job_name=job.path.name,
            state=JobState.RUNNING,
            parent_run_id=config.parent_run_id,
            best_child_run_id=tags.get(BEST_CHILD_TAG),
        )
        if status == RunStatus.FINISHED:
            return self._with_state(base, JobState.COMPLETED)
        if status == RunStatus.FAILED:
            error = tags.get(ERROR_TAG) or "training failed"
            return JobStatus(base.job_name, JobState.FAILED, base.parent_run_id, error)
        if status == RunStatus.KILLED:
            error = tags.get(ERROR_TAG) or "canceled"
            return JobStatus(base.job_name, JobState.CANCELED, base.parent_run_id, error)
        if job.canceled_file.exists():  # canceled while its run was being created
            return JobStatus(base.job_name, JobState.CANCELED, base.parent_run_id, "canceled")
        if is_locked(job.trainer_lock):
            return base
        if job.attempts() == 0:
            return self._with_state(base, JobState.QUEUED)
        return base  # trainer gone mid-attempt: the next ensure_job re-trains

    def _first_in_line(self, job: JobDir) -> bool:
        """Whether a slot is free for ``job``: jobs waiting for one start in the order they
        were submitted, not in the order their re-checks happen to come."""
        job.waiting_file.touch()
        free = free_slots(self._slots_dir, self.settings.max_concurrent_jobs)
        if free == 0:
            return False
        now = time.time()
        line: list[tuple[float, str]] = []
        for path in (self.data_dir / "jobs").iterdir():
            other = JobDir(path)
            try:
                if now - other.waiting_file.stat().st_mtime > WAITING_STALE_SECONDS:
                    continue
                line.append((other.request_file.stat().st_mtime, path.name))
            except OSError:
                continue
        return job.path.name in {name for _, name in sorted(line)[:free]}

    @staticmethod
    def _hinted(job: JobDir, config: TrainerConfig, status: JobStatus) -> JobStatus:
        """``status`` with when to look again (``recheck_in``), and a running job's
        progress: soon for a job waiting for a slot."""
        if status.state is JobState.QUEUED:
            return dataclasses.replace(status, recheck_after=QUEUED_RECHECK_SECONDS)
        if status.state is not JobState.RUNNING:
            return status
        progress = job.read_progress()
        search_ends_at = progress.pop("search_ends_at", None) if progress else None
        deadline = None
        if config.timeout_seconds is not None and _read(job.phase_file) == "running":
            with contextlib.suppress(OSError):
                deadline = job.phase_file.stat().st_mtime + config.timeout_seconds
        now = time.time()
        if progress is not None and deadline is not None:
            progress["seconds_left"] = max(0, round(deadline - now))
        stage = progress.get("stage") if progress else None
        wait = recheck_in(now, deadline, stage, search_ends_at)
        return dataclasses.replace(status, recheck_after=wait, progress=progress)

    @staticmethod
    def _count_start_crash(job: JobDir) -> None:
        """Count a trainer that died before it took its job (it writes a phase on every
        way out, so a dead one without a phase crashed while starting: an import error,
        the OOM killer) as an attempt, so one that can never start is not started forever."""
        pid = job.spawned_pid()
        if pid is None or job.phase_file.exists() or pid_alive(pid):
            return
        job.write_attempts(job.attempts() + 1)
        write_atomic(job.phase_file, "crashed")
        log.warning("local.trainer_crashed_at_start", job_name=job.path.name, pid=pid)

    def _give_up(self, job: JobDir, config: TrainerConfig) -> JobStatus:
        reason = (
            f"training stopped {job.attempts()} times without finishing "
            f"(trainer process died); see {job.log_file}"
        )
        tail = _last_error(job.log_file)
        if tail:
            reason += f"; it last said: {tail}"
        for child in scan_child_runs(self.client, [config.experiment_id], config.parent_run_id):
            if child.status == RunStatus.RUNNING:  # the dead trainer's trial in progress
                self.client.set_terminated(child.run_id, RunStatus.KILLED)
        self.client.set_tag(config.parent_run_id, ERROR_TAG, reason)
        self.client.set_terminated(config.parent_run_id, RunStatus.FAILED)
        log.warning("local.job_gave_up", job_name=job.path.name, attempts=job.attempts())
        return self._status(job, config)

    def _kill_trainer(self, job: JobDir) -> bool:
        """SIGKILL the process group of the trainer that holds the job (none holds it when
        its lock is free, so a stale pid file never names a stranger); True when one did."""
        pid = job.spawned_pid()
        if pid is None or not is_locked(job.trainer_lock):
            return False
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while is_locked(job.trainer_lock) and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            self._reap()
            time.sleep(0.05)
        if is_locked(job.trainer_lock):
            raise TransientError(f"the trainer of {job.path.name} (pid {pid}) did not stop")
        return True

    def _end_killed(self, config: TrainerConfig, reason: str) -> None:
        run = self.client.get_run(config.parent_run_id)
        if run.info.status != RunStatus.RUNNING:
            return  # it ended first
        for child in scan_child_runs(self.client, [config.experiment_id], config.parent_run_id):
            if child.status == RunStatus.RUNNING:
                self.client.set_terminated(child.run_id, RunStatus.KILLED)
        self.client.set_tag(config.parent_run_id, ERROR_TAG, reason)
        self.client.set_terminated(config.parent_run_id, RunStatus.KILLED)

    def _spawn(self, job: JobDir) -> None:
        job.phase_file.unlink(missing_ok=True)
        with open_private(job.log_file) as out:
            process = subprocess.Popen(
                [self.python, "-m", "automl_service.engines.local.trainer", str(job.path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=str(self.data_dir),
                env=self._trainer_env(),
            )
        self._spawned.append(process)
        write_atomic(job.pid_file, str(process.pid))
        deadline = time.monotonic() + SPAWN_WAIT_SECONDS
        while time.monotonic() < deadline:
            if job.phase_file.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        log.info(
            "local.trainer_started",
            job_name=job.path.name,
            pid=process.pid,
            phase=_read(job.phase_file),
        )

    def _trainer_env(self) -> dict[str, str]:
        """The trainer's environment: the tracking server's credentials travel here, as
        MLflow's own variables, never in the job folder; MLflow's "View run at" lines,
        which would print the store's address, are off. glibc's malloc is asked to give
        every block of 64 KiB or more back to the system when it is freed (unless the
        environment already says otherwise): a large table read in chunks otherwise
        leaves its freed chunks in the heap, and on a million rows that raised the
        trainer's peak memory by 65 MB. Arrow's own allocator, which holds on to what
        it freed, gives way to the same malloc: the target column of a million rows
        read as text otherwise left 14 MB behind."""
        env = {
            "MALLOC_MMAP_THRESHOLD_": str(64 * 1024),
            "ARROW_DEFAULT_MEMORY_POOL": "system",
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        }
        _, user, password = split_credentials(self.settings.mlflow_uri)
        if user is not None:
            env["MLFLOW_TRACKING_USERNAME"] = user
        if password is not None:
            env["MLFLOW_TRACKING_PASSWORD"] = password
        return env

    def _reap(self) -> None:
        self._spawned = [p for p in self._spawned if p.poll() is None]

    @staticmethod
    def _with_state(status: JobStatus, state: JobState) -> JobStatus:
        return JobStatus(
            status.job_name, state, status.parent_run_id, status.error, status.best_child_run_id
        )


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _last_error(log_file: Path, limit: int = 500) -> str | None:
    """The last line of the trainer log that looks like an error (a traceback's last line)."""
    try:
        with log_file.open("rb") as handle:
            handle.seek(max(0, log_file.stat().st_size - 20_000))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        text = line.strip()
        if text and ("Error" in text or "error" in text or "Exception" in text):
            return text[:limit]
    return None
