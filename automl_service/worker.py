"""The worker: a reconciler that advances each request by the steps that are ready.

Each time a request's message is received, the worker runs the steps in order (job,
selection, registration, deployment), each idempotent and keyed by the request id, then
either deletes the message (the request ended) or hides it again until the next check
(the queue is the durable timer). A worker killed at any instant loses nothing: the
message comes back and the next receive carries on from what the backend already holds.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import structlog

from .backoff import idle_delay, recheck_delay, retry_delay
from .engines.base import Deployer, Engine, JobState, Registry
from .errors import (
    InvalidRequest,
    JobFailed,
    NotReady,
    PermanentError,
    StaleReceipt,
    TransientError,
)
from .logs import get_logger
from .queues.base import Message, Queue, ResultSink
from .request import AutoMLRequest, parse_request
from .results import LeaderboardRow, RequestResult, RequestState, ResultStore
from .selection import Selection, select_best
from .settings import WorkerSettings
from .stats import WorkerStats

log = get_logger(__name__)

LEADERBOARD_ROWS = 10

#: Crash testing: name a step here and the worker kills itself (SIGKILL) right after it.
CRASH_AFTER_STEP_ENV = "AUTOML_SERVICE_CRASH_AFTER_STEP"

#: Exit codes of ``run`` (and so of ``automl-service worker`` and ``drain``).
EXIT_OK = 0
EXIT_QUEUE_UNREACHABLE = 3


@dataclass
class Backend:
    """The concrete parts a worker drives; built from settings in ``backends.py``."""

    engine: Engine
    registry: Registry
    deployer: Deployer | None = None


class Worker:
    """Receives messages and advances their requests. Safe to run many side by side."""

    def __init__(
        self,
        queue: Queue,
        backend: Backend,
        results: ResultStore,
        settings: WorkerSettings,
        stats: WorkerStats | None = None,
        sink: ResultSink | None = None,
    ) -> None:
        self.queue = queue
        self.backend = backend
        self.results = results
        self.settings = settings
        self.stats = stats or WorkerStats()
        self.sink = sink

    # The loop -------------------------------------------------------------------------

    def run(
        self, stop: threading.Event, *, drain: bool = False, deadline: float | None = None
    ) -> int:
        """Poll until ``stop`` is set (or, with ``drain``, until nothing is visible, or
        ``deadline`` passes). Returns an exit code: 0, or 3 when the queue stays unreachable
        in drain mode."""
        empty_polls = 0
        while not stop.is_set():
            self.stats.beat()
            if deadline is not None and time.time() >= deadline:
                log.info("deadline reached")
                return EXIT_OK
            try:
                handled = self.run_once(stop)
            except TransientError as exc:
                log.warning("queue unavailable", error=str(exc))
                if drain:
                    return EXIT_QUEUE_UNREACHABLE
                handled = 0
            except Exception:
                if drain:
                    raise
                # A long-running worker outlives a fault of its own; messages in flight
                # come back after their visibility timeout.
                log.exception("worker loop error")
                self.stats.count("errors")
                handled = 0
            if handled:
                empty_polls = 0
                continue
            if drain:
                return EXIT_OK
            empty_polls += 1
            stop.wait(
                idle_delay(
                    empty_polls,
                    self.settings.poll_interval_seconds,
                    self.settings.max_poll_interval_seconds,
                )
            )
        return EXIT_OK

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Receive one batch and advance each of its requests; returns the batch size."""
        messages = self.queue.receive(
            self.settings.batch_size, self.settings.visibility_timeout_seconds
        )
        for index, message in enumerate(messages):
            if stop is not None and stop.is_set():
                self._release(messages[index:])
                break
            self.handle(message)
            self.stats.beat()
        return len(messages)

    def _release(self, messages: list[Message]) -> None:
        """Make unhandled messages visible again at once (on shutdown), best effort: a
        message not released comes back after its visibility timeout anyway."""
        for message in messages:
            try:
                self.queue.hide(message, 0)
            except Exception as exc:
                log.warning("could not release message", error=str(exc))

    # One message ----------------------------------------------------------------------

    def handle(self, message: Message) -> None:
        """Advance the message's request and settle the message: delete, hide or poison."""
        self.stats.count("received")
        try:
            request = parse_request(message.body)
        except InvalidRequest as exc:
            self._poison_invalid(message, str(exc))
            return
        with structlog.contextvars.bound_contextvars(
            request_id=request.id, job_name=request.job_name, step="settle"
        ):
            self.stats.track(request.id, True)
            try:
                self._settle(message, request)
            except StaleReceipt as exc:
                # Another receiver holds the message now; the request's steps are
                # idempotent, so letting go loses nothing.
                log.warning("message taken by another receiver", error=str(exc))
            finally:
                self.stats.track(request.id, False)

    def _settle(self, message: Message, request: AutoMLRequest) -> None:
        current = self._current(request, message)
        try:
            result = self.advance(request, current)
        except NotReady as exc:
            self.stats.count("rechecked")
            delay = recheck_delay(
                message.dequeue_count,
                self.settings.recheck_seconds,
                self.settings.max_recheck_seconds,
            )
            log.info("not ready", reason=str(exc), recheck_in=round(delay, 1))
            self.queue.hide(message, delay)
        except PermanentError as exc:
            self._finish(
                message,
                self._latest(request, current).merged(state=RequestState.FAILED, error=str(exc)),
                request.reply_to,
            )
        except Exception as exc:  # transient, or a fault of ours: count it, try again
            self._failed_attempt(message, request, current, exc)
        else:
            self._finish(message, result, request.reply_to)

    def _current(self, request: AutoMLRequest, message: Message) -> RequestResult:
        existing = self.results.get(request.id)
        base = existing or RequestResult(
            request_id=request.id, state=RequestState.RECEIVED, task=request.task.value
        )
        return base.merged(attempts=message.failures, job_name=request.job_name)

    def _latest(self, request: AutoMLRequest, fallback: RequestResult) -> RequestResult:
        return self.results.get(request.id) or fallback

    def _failed_attempt(
        self, message: Message, request: AutoMLRequest, current: RequestResult, exc: Exception
    ) -> None:
        failures = message.failures + 1
        self.stats.count("errors")
        reason = f"{type(exc).__name__}: {exc}"
        if failures >= self.settings.max_failures:
            log.error("giving up", failures=failures, error=reason)
            result = self._latest(request, current).merged(
                state=RequestState.FAILED,
                error=f"gave up after {failures} failed attempts; last: {reason}",
                attempts=failures,
            )
            self._record(result)
            self._publish(result, request.reply_to)
            self.queue.dead_letter(message, result.error or reason)
            self.stats.count("failed")
            return
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        delay = retry_delay(
            failures,
            self.settings.retry_seconds,
            self.settings.max_retry_seconds,
            retry_after=retry_after,
        )
        log.warning("attempt failed", failures=failures, retry_in=round(delay, 1), error=reason)
        self._record(self._latest(request, current).merged(attempts=failures, error=reason))
        self.queue.hide(message, delay, failed=True)

    def _finish(self, message: Message, result: RequestResult, reply_to: str | None) -> None:
        self._record(result)
        self.stats.count("succeeded" if result.state is RequestState.SUCCEEDED else "failed")
        self._publish(result, reply_to)
        self.queue.delete(message)
        log.info("request ended", state=result.state.value, error=result.error)

    def _poison_invalid(self, message: Message, reason: str) -> None:
        request_id = _claimed_id(message.body)
        if request_id is None or self.results.get(request_id) is not None:
            request_id = f"message-{message.message_id}"  # never overwrite a real request
        log.warning("invalid message", message_id=message.message_id, reason=reason)
        result = RequestResult(request_id=request_id, state=RequestState.POISONED, error=reason)
        self._record(result)
        self.stats.count("poisoned")
        self._publish(result, None)
        self.queue.dead_letter(message, reason)

    def _record(self, result: RequestResult) -> None:
        self.results.put(result)

    def _publish(self, result: RequestResult, reply_to: str | None) -> None:
        if self.sink is None:
            return
        try:
            self.sink.publish(reply_to, result.model_dump_json())
        except Exception as exc:  # the outcome is in the result store; do not fail the request
            log.warning("could not publish result", error=str(exc))

    # The steps --------------------------------------------------------------------------

    def advance(self, request: AutoMLRequest, current: RequestResult) -> RequestResult:
        """Run every step that is ready; return the final result, or raise NotReady."""
        if current.state is RequestState.SUCCEEDED:
            return current  # a re-sent request that already ended: nothing to redo
        engine = self.backend.engine
        with self._step("job"):
            status = engine.ensure_job(request)
        current = current.merged(parent_run_id=status.parent_run_id)
        if not status.state.terminal:
            self._record(current.merged(state=RequestState.TRAINING))
            raise NotReady(f"job {status.job_name} is {status.state.value}")
        if status.state is not JobState.COMPLETED:
            raise JobFailed(
                f"job {status.job_name} {status.state.value}: {status.error or 'no reason given'}"
            )

        with self._step("select"):
            runs = engine.child_runs(request.job_name)
            selection = select_best(runs, request.selection_metric, request.selection_goal)
        current = current.merged(
            state=RequestState.REGISTERING, **_selection_fields(selection, status.best_child_run_id)
        )
        self._record(current)

        with self._step("register"):
            model = self.backend.registry.register(request, selection)
        current = current.merged(model_name=model.name, model_version=model.version)

        if request.deployment is not None:
            if self.backend.deployer is None:
                raise PermanentError("this backend cannot deploy models; drop 'deployment'")
            self._record(current.merged(state=RequestState.DEPLOYING))
            with self._step("deploy"):
                endpoint = self.backend.deployer.deploy(request, model, selection.value)
            current = current.merged(
                endpoint=endpoint.name,
                scoring_uri=endpoint.scoring_uri,
                deployment_note=endpoint.reason or None,
            )
        return current.merged(state=RequestState.SUCCEEDED, error=None)

    @contextmanager
    def _step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(step=name):
            try:
                yield
            finally:
                self.stats.time_step(name, time.perf_counter() - started)
        if os.environ.get(CRASH_AFTER_STEP_ENV) == name:
            os.kill(os.getpid(), signal.SIGKILL)


def _selection_fields(selection: Selection, engine_best: str | None) -> dict[str, object]:
    reason = selection.explain()
    if engine_best and engine_best != selection.winner.run_id:
        reason += f"; the engine's own best run was {engine_best}"
        log.info("selection differs from engine", engine_best=engine_best)
    return {
        "metric": selection.metric,
        "best_run_id": selection.winner.run_id,
        "best_value": selection.value,
        "engine_best_run_id": engine_best,
        "selection_reason": reason,
        "leaderboard": [
            LeaderboardRow(
                run_id=run.run_id, algorithm=run.algorithm, value=run.metrics[selection.metric]
            )
            for run in selection.leaderboard[:LEADERBOARD_ROWS]
        ],
    }


def _claimed_id(body: str) -> str | None:
    """The request id an invalid message claims, if it names a usable one."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return None
    value = data.get("request_id") if isinstance(data, dict) else None
    if isinstance(value, str) and value.replace("-", "").replace("_", "").isalnum():
        return value[:63]
    return None
