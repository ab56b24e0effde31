"""The trainer process: ``python -m automl_service.engines.local.trainer <job_dir>``.

It holds the job directory's lock for its whole life (so "a trainer is alive" is "the lock
is held"); a second trainer for the same job exits at once. It then takes one of the
concurrent-job slots; with none free it exits and the job stays queued. Each run that
starts training counts one attempt. The parent run ends FINISHED with
``automl_best_child_run_id`` set, or FAILED with ``automl_service.error`` (one line; the
traceback goes to this process's log).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any

from .budget import Budget
from .layout import JobDir, write_atomic
from .locks import take_slot, try_lock

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

#: When this process started: the request's time limit counts from here, so start-up and
#: reading the data come out of it too.
STARTED_AT = time.time()


def say(event: str, **fields: Any) -> None:
    """One structured line to the trainer log (stdout and stderr are the log file)."""
    from ...logs import get_logger

    get_logger("automl_service.trainer").info(event, **fields)


def _configure_logging(job_name: str) -> None:
    import structlog

    from ...logs import configure_logging
    from ...settings import LoggingSettings

    configure_logging(LoggingSettings(format="json", level="info"))
    structlog.contextvars.bind_contextvars(job_name=job_name, pid=os.getpid())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m automl_service.engines.local.trainer <job_dir>", file=sys.stderr)
        return EXIT_USAGE
    job = JobDir(Path(args[0]).resolve())
    _configure_logging(job.path.name)
    job_lock = try_lock(job.trainer_lock, wait_seconds=3.0)
    if job_lock is None:
        say("trainer.duplicate", job=job.path.name)
        write_atomic(job.phase_file, "duplicate")
        return EXIT_OK
    config = job.read_config()
    if config is None:
        say("trainer.no_config", job=job.path.name)
        write_atomic(job.phase_file, "failed")
        return EXIT_USAGE
    slot = take_slot(Path(config.slots_dir), config.max_concurrent_jobs)
    if slot is None:
        say("trainer.queued", job=job.path.name)
        write_atomic(job.phase_file, "queued")
        return EXIT_OK
    attempt = job.attempts() + 1
    job.write_attempts(attempt)
    write_atomic(job.phase_file, "running")
    return train(job, attempt, [job_lock, slot])


def train(job: JobDir, attempt: int, held: list[IO[bytes]]) -> int:
    """Run one attempt while ``held`` locks stay open; end the parent run either way."""
    from mlflow import MlflowClient

    from ...request import AutoMLRequest
    from ...runs import RunStatus
    from .trials import ATTEMPT_TAG, ERROR_TAG

    config = job.read_config()
    assert config is not None
    client = MlflowClient(tracking_uri=config.tracking_uri)
    parent_id = config.parent_run_id
    parent = client.get_run(parent_id)
    if parent.info.status != RunStatus.RUNNING:
        say("trainer.already_ended", status=parent.info.status)
        return EXIT_OK
    say("trainer.start", job=job.path.name, attempt=attempt, parent_run_id=parent_id)
    client.set_tag(parent_id, ATTEMPT_TAG, str(attempt))
    if attempt > config.max_trainer_starts:
        reason = f"training stopped {config.max_trainer_starts} times without finishing"
        client.set_tag(parent_id, ERROR_TAG, reason)
        client.set_terminated(parent_id, RunStatus.FAILED)
        return EXIT_FAILED
    try:
        request = AutoMLRequest.model_validate_json(job.request_file.read_text())
        retire_stale_children(client, config.experiment_id, parent_id)
        best = run_attempt(
            client,
            config.tracking_uri,
            config.experiment_id,
            parent_id,
            request,
            attempt,
            progress_file=job.progress_file,
            budget=Budget(request.limits.timeout_seconds, STARTED_AT),
        )
    except Exception as exc:
        traceback.print_exc(file=sys.stdout)
        reason = one_line(exc)
        say("trainer.failed", reason=reason)
        client.set_tag(parent_id, ERROR_TAG, reason)
        client.set_terminated(parent_id, RunStatus.FAILED)
        return EXIT_FAILED
    say("trainer.finished", best_child_run_id=best)
    client.set_terminated(parent_id, RunStatus.FINISHED)
    return EXIT_OK


def run_attempt(
    client: Any,
    tracking_uri: str,
    experiment_id: str,
    parent_id: str,
    request: Any,
    attempt: int,
    progress_file: Path | None = None,
    budget: Budget | None = None,
) -> str:
    """Search, log the leaders' models and the winner's insight (while time is left),
    tag the parent; returns the best child run id.
    ``progress_file`` is rewritten after each trial (trials so far, best value); the
    search and what follows it stay within ``budget`` (see ``budget.py``)."""
    from mlflow.entities import Metric

    from ...errors import NoEligibleRun
    from .budget import SUGGESTED_SEARCH_SECONDS
    from .ensemble import MAX_MEMBERS, ensembles_wanted
    from .model import log_pyfunc
    from .search import search
    from .threshold import check_two_classes, record_threshold
    from .trials import BEST_CHILD_TAG, Objective, TrialLog

    objectives = [Objective(request.metric, _goal(request.metric, request))]
    if request.selection_metric != request.metric:
        objectives.append(Objective(request.selection_metric, request.selection_goal))
    keep_top = MAX_MEMBERS if ensembles_wanted(request) else 0
    log = TrialLog(
        client,
        experiment_id,
        parent_id,
        request.job_name,
        attempt,
        objectives,
        keep_top,
        progress_file=progress_file,
    )
    check_two_classes(request)
    leaders = search(request, log, budget)
    log.finishing()
    say("trainer.searched", trials=len(log.records), leaders=len(leaders))
    primary = log.leaders.get(request.metric)
    if primary is None:
        reason = f"no trial produced a finite {request.metric} ({len(log.records)} trials)"
        if not log.records and budget is not None:
            reason += (
                f" within limits.timeout_seconds = {budget.seconds:g}; a time limit of at "
                f"least {budget.suggested_seconds()} s leaves "
                f"{SUGGESTED_SEARCH_SECONDS:g} s for the search"
            )
        raise NoEligibleRun(reason)
    record_threshold(client, request, leaders, log.validation)
    for record, model in leaders:
        if model is not None:
            log_pyfunc(tracking_uri, record.run_id, model, record.end_time_ms)
            say(
                "trainer.model_logged",
                run_id=record.run_id,
                algorithm=record.algorithm,
                refit_error=getattr(model, "refit_error", None),
            )
    # Imported once the search is done: drawing (matplotlib) is not paid for from the
    # time limit before the first trial.
    from .model_insight import log_insight

    log_insight(client, request, log, budget)
    best = primary[0]
    client.set_tag(parent_id, BEST_CHILD_TAG, best.run_id)
    now = int(time.time() * 1000)
    client.log_batch(parent_id, metrics=[Metric(k, v, now, 0) for k, v in best.metrics.items()])
    return best.run_id


def retire_stale_children(client: Any, experiment_id: str, parent_id: str) -> None:
    """Mark every child left by an earlier attempt KILLED: none of them has a model."""
    from ...runs import RunStatus
    from ...scan import scan_child_runs

    for record in scan_child_runs(client, [experiment_id], parent_id):
        if record.status != RunStatus.KILLED:
            client.set_terminated(record.run_id, RunStatus.KILLED)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]


def _goal(metric: str, request: Any) -> Any:
    from ...metrics import resolve_goal

    return resolve_goal(metric, None, request.task)


if __name__ == "__main__":
    sys.exit(main())
