"""The worker: a reconciler that advances each request by the steps that are ready.

Each time a request's message is received, the worker runs the steps in order (job,
selection, registration, deployment), each idempotent and keyed by the request id, then
either deletes the message (the request ended) or hides it again until the next check
(the queue is the durable timer). A worker killed at any instant loses nothing: the
message comes back and the next receive carries on from what the backend already holds.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import structlog

from .backoff import idle_delay
from .control import CancelOrder, parse_order
from .engines.base import Backend, JobState
from .errors import (
    InvalidRequest,
    JobFailed,
    NotReady,
    PermanentError,
    StaleReceipt,
    TransientError,
)
from .exit_codes import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from .fingerprint import stamped
from .logs import get_logger
from .policy import Applied
from .queues.base import Message, Queue, ResultSink
from .redact import scrub_value
from .request import AutoMLRequest, load_json, parse_request
from .results import LeaderboardRow, RequestResult, RequestState, ResultStore
from .selection import Selection, select_best
from .settings import WorkerSettings
from .settle import Action, Outcome, classify, decide
from .stats import WorkerStats
from .tags import THRESHOLD_REASON_TAG, THRESHOLD_TAG

log = get_logger(__name__)

LEADERBOARD_ROWS = 10

#: Crash testing: name a step here and the worker kills itself (SIGKILL) right after it.
CRASH_AFTER_STEP_ENV = "AUTOML_SERVICE_CRASH_AFTER_STEP"


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
        policy: Callable[[AutoMLRequest], Applied] | None = None,
        fingerprint: Callable[[str, AutoMLRequest], str | None] | None = None,
    ) -> None:
        self.queue = queue
        self.backend = backend
        self.results = results
        self.settings = settings
        self.stats = stats or WorkerStats()
        self.sink = sink
        #: The operator's policy, applied to every request received (``policy.enforce``).
        self.policy = policy
        #: The data fingerprint of a received request, from its message id and the
        #: request (``fingerprint.pinned_fingerprints``), for messages that do not carry
        #: one; None leaves requests as they are.
        self.fingerprint = fingerprint
        #: Set when the worker must stop (settings it cannot work with): the exit code.
        self.stop_code: int | None = None
        #: When the earliest message this worker hid is due back (time.monotonic()): an
        #: idle worker does not sleep past it, so a re-check aimed at a job's end happens
        #: then, not at the next idle poll.
        self._next_due: float | None = None

    # The loop -------------------------------------------------------------------------

    def run(
        self, stop: threading.Event, *, drain: bool = False, deadline: float | None = None
    ) -> int:
        """Poll until ``stop`` is set (or, with ``drain``, until nothing is visible, or
        ``deadline`` passes). Returns an exit code: 0; 2 when the settings turn out unusable
        (a ConfigurationError while advancing a request); 3 when the queue stays unreachable
        in drain mode; 1 when a drain run meets a fault of its own."""
        empty_polls = 0
        while not stop.is_set() and self.stop_code is None:
            self.stats.beat()
            if deadline is not None and time.time() >= deadline:
                log.info("worker.deadline_reached")
                return EXIT_OK
            try:
                handled = self.run_once(stop)
            except TransientError as exc:
                log.warning("worker.queue_unavailable", error=str(exc))
                if drain:
                    return EXIT_UNREACHABLE
                handled = 0
            except Exception:
                # Messages in flight come back after their visibility timeout. A long-running
                # worker outlives a fault of its own; a drain run reports it and ends.
                log.exception("worker.loop_error")
                self.stats.count("errors")
                if drain:
                    return EXIT_FAILED
                handled = 0
            if self.stop_code is not None:
                break
            if handled:
                empty_polls = 0
                continue
            if drain:
                return EXIT_OK
            empty_polls += 1
            idle = idle_delay(
                empty_polls,
                self.settings.poll_interval_seconds,
                self.settings.max_poll_interval_seconds,
            )
            self.queue.wait_for_messages(self.next_wait(idle), stop)
        return self.stop_code if self.stop_code is not None else EXIT_OK

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Receive one batch and advance each of its requests; returns the batch size."""
        messages = self.queue.receive(
            self.settings.batch_size, self.settings.visibility_timeout_seconds
        )
        for index, message in enumerate(messages):
            if self.stop_code is not None or (stop is not None and stop.is_set()):
                self._release(messages[index:])
                break
            self.handle(message)
            self.stats.beat()
        return len(messages)

    def _due_in(self, delay: float) -> None:
        now = time.monotonic()
        due = now + delay
        if self._next_due is None or self._next_due <= now or due < self._next_due:
            self._next_due = due

    def next_wait(self, idle: float) -> float:
        """How long an idle worker waits: ``idle``, or less when a message it hid is due
        back sooner (a little after, so that the message is visible by then)."""
        if self._next_due is None:
            return idle
        wait = self._next_due - time.monotonic() + 0.05
        if wait <= 0.05:
            self._next_due = None
            return min(idle, 0.05)
        return min(idle, wait)

    def _release(self, messages: list[Message]) -> None:
        """Make unhandled messages visible again at once (on shutdown), best effort: a
        message not released comes back after its visibility timeout anyway."""
        for message in messages:
            try:
                self.queue.hide(message, 0)
            except Exception as exc:
                log.warning("worker.release_failed", error=str(exc))

    # One message ----------------------------------------------------------------------

    def handle(self, message: Message) -> None:
        """Advance the message's request, then carry out what ``settle.decide`` says."""
        self.stats.count("received")
        try:
            try:
                order = parse_order(message.body)
                if order is not None:
                    self._carry_out(message, order)
                    return
                request, changes = self._admit(message)
            except InvalidRequest as exc:
                self._poison_invalid(message, str(exc))
                return
            except Exception as exc:  # the result store, where fingerprints are pinned
                self._not_admitted(message, exc)
                return
            with structlog.contextvars.bound_contextvars(
                request_id=request.id, job_name=request.job_name, step="settle"
            ):
                self.stats.track(request.id, True)
                try:
                    self._settle(message, request, changes)
                finally:
                    self.stats.track(request.id, False)
        except StaleReceipt as exc:
            # Another receiver holds the message now; the request's steps are idempotent,
            # so letting go loses nothing.
            log.warning("worker.message_taken", error=str(exc))

    def _admit(self, message: Message) -> tuple[AutoMLRequest, tuple[str, ...]]:
        """The request as it will run: parsed, under the operator's policy, carrying its
        data's fingerprint (the one first seen for this message). Raises InvalidRequest."""
        request = parse_request(message.body)
        changes: tuple[str, ...] = ()
        if self.policy is not None:
            applied = self.policy(request)
            request, changes = applied.request, applied.changes
        if self.fingerprint is not None and request.data_fingerprint is None:
            request = stamped(request, self.fingerprint(message.message_id, request))
        return request, changes

    def _not_admitted(self, message: Message, exc: Exception) -> None:
        decision = decide(
            classify(exc),
            dequeue_count=message.dequeue_count,
            failures=message.failures,
            settings=self.settings,
        )
        reason = f"{type(exc).__name__}: {exc}"
        self.stats.count("errors")
        if decision.action is Action.RETRY:
            log.warning("worker.admit_failed", error=reason, retry_in=round(decision.delay, 1))
            self.queue.hide(message, decision.delay, failed=True)
        elif decision.action is Action.STOP:
            self._stop(message, reason)
        else:
            log.error("worker.admit_gave_up", error=reason)
            self.queue.dead_letter(message, f"could not be admitted: {reason}")

    def _stop(self, message: Message, reason: str) -> None:
        """Settings the service cannot work with: release the message untouched for a
        worker that can, and stop this one with exit code 2."""
        log.error("worker.misconfigured", error=reason)
        self.stop_code = EXIT_USAGE
        self.queue.hide(message, 0)

    def _carry_out(self, message: Message, order: CancelOrder) -> None:
        """Cancel the request: record it canceled (so its own message ends it there, and
        no worker still advancing it can undo that), stop its job, delete the order. A
        request that has already ended is left as it is."""
        with structlog.contextvars.bound_contextvars(request_id=order.request_id, step="cancel"):
            try:
                existing = self.results.get(order.request_id)
                if existing is not None and existing.state.terminal:
                    log.info("worker.cancel_too_late", state=existing.state.value)
                else:
                    base = existing or RequestResult(
                        request_id=order.request_id, state=RequestState.RECEIVED
                    )
                    canceled = base.merged(
                        state=RequestState.CANCELED, error=order.explanation, progress=None
                    )
                    self._record(canceled)
                    if canceled.job_name is not None:
                        self.backend.engine.cancel_job(canceled.job_name, order.explanation)
                    log.info("worker.request_canceled", reason=order.explanation)
            except Exception as exc:
                self._not_admitted(message, exc)
                return
            self.queue.delete(message)

    def _settle(
        self, message: Message, request: AutoMLRequest, changes: tuple[str, ...] = ()
    ) -> None:
        current: RequestResult | None = None
        result: RequestResult | None = None
        error: Exception | None = None
        try:
            current = self._current(request, message)
            if current is None:  # an earlier attempt's message: a retry replaced it
                log.info("worker.attempt_superseded", attempt=request.attempt)
                self.queue.delete(message)
                return
            if changes:
                current = current.merged(policy_changes=list(changes))
            result = self.advance(request, current)
        except Exception as exc:
            error = exc
        outcome = classify(error)
        if outcome is Outcome.STALE and error is not None:
            raise error
        if outcome is Outcome.BUG:
            log.error("worker.unexpected_error", exc_info=error)
        decision = decide(
            outcome,
            dequeue_count=message.dequeue_count,
            failures=message.failures,
            settings=self.settings,
            retry_after=error.retry_after if isinstance(error, TransientError) else None,
            recheck_after=error.recheck_after if isinstance(error, NotReady) else None,
        )
        reason = f"{type(error).__name__}: {error}" if error is not None else None
        fallback = current or RequestResult(
            request_id=request.id,
            state=RequestState.RECEIVED,
            task=request.task,
            job_name=request.job_name,
        )
        action = decision.action
        if action is Action.FINISH:
            if result is None:  # failed for good
                result = self._latest(request, fallback).merged(
                    state=RequestState.FAILED, error=str(error)
                )
            self._end(message, result, request.reply_to)
        elif action is Action.RECHECK:
            self.stats.count("rechecked")
            log.info("worker.not_ready", reason=str(error), recheck_in=round(decision.delay, 1))
            self.queue.hide(message, decision.delay)
            self._due_in(decision.delay)
        elif action is Action.RETRY:
            self.stats.count("errors")
            log.warning(
                "worker.attempt_failed",
                failures=decision.failures,
                retry_in=round(decision.delay, 1),
                error=reason,
            )
            self.queue.hide(message, decision.delay, failed=True)
            self._due_in(decision.delay)
            try:  # after the hide: a store that is itself failing must not undo the count
                self._record(
                    self._latest(request, fallback).merged(attempts=decision.failures, error=reason)
                )
            except Exception as exc:
                log.warning("worker.result_not_recorded", error=str(exc))
        elif action is Action.GIVE_UP:
            self.stats.count("errors")
            log.error("worker.giving_up", failures=decision.failures, error=reason)
            failed = self._latest(request, fallback).merged(
                state=RequestState.FAILED,
                error=f"gave up after {decision.failures} failed attempts; last: {reason}",
                attempts=decision.failures,
            )
            self._end(message, failed, request.reply_to, dead_letter=failed.error)
        elif action is Action.POISON:
            self._poison_invalid(message, str(error))
        elif action is Action.STOP:
            self._stop(message, str(error))
        else:  # pragma: no cover - decide() gives no other action for these outcomes
            raise AssertionError(f"no handling for {action} after {outcome}")

    def _current(self, request: AutoMLRequest, message: Message) -> RequestResult | None:
        """The request's result so far (a new attempt's record for a retry), or None for
        an earlier attempt's message. Raises InvalidRequest when its id was used before
        for other content or data (one id names one request), or a retry comes for a
        request that has not failed or been canceled."""
        existing = self.results.get(request.id)
        if existing is not None and request.attempt < existing.attempt:
            return None
        if existing is not None and request.attempt > existing.attempt:
            base = self._next_attempt(request, existing)
        else:
            request.refuse_reused_id(existing.digest if existing is not None else None)
            if existing is not None:
                _same_settings(request, existing)
            base = existing or RequestResult(
                request_id=request.id, state=RequestState.RECEIVED, task=request.task
            )
            if existing is None or existing.state is RequestState.RECEIVED:
                self.results.keep_request(request.id, request.model_dump_json())
        return base.merged(
            attempts=message.failures,
            job_name=request.job_name,
            digest=request.digest,
            settings_digest=request.settings_digest,
            data_fingerprint=request.data_fingerprint,
        )

    def _next_attempt(self, request: AutoMLRequest, existing: RequestResult) -> RequestResult:
        """The record of a retry's new attempt; the request is kept as it now runs."""
        if not existing.state.retryable:
            raise InvalidRequest(
                f"request {request.id!r} is {existing.state.value}: only a failed or "
                "canceled request can be retried"
            )
        _same_settings(request, existing)
        self.results.keep_request(request.id, request.model_dump_json())
        log.info("worker.attempt_started", attempt=request.attempt)
        return existing.next_attempt(request.attempt)

    def _latest(self, request: AutoMLRequest, fallback: RequestResult) -> RequestResult:
        try:
            return self.results.get(request.id) or fallback
        except Exception as exc:  # the store may be what failed: settle on what we have
            log.warning("worker.result_store_unreadable", error=str(exc))
            return fallback

    def _end(
        self,
        message: Message,
        result: RequestResult,
        reply_to: str | None,
        *,
        dead_letter: str | None = None,
    ) -> None:
        """Record and publish the outcome, then delete the message (or move it to the
        poison queue with ``dead_letter`` as the reason). Until the outcome is recorded and
        published the message stays: a store or reply queue that fails is retried like any
        failed attempt."""
        try:
            self._record(result)
            # A cancel recorded meanwhile stands: the outcome is what the store kept.
            stored = self.results.get(result.request_id)
            if stored is not None and stored.state is RequestState.CANCELED:
                result = stored
            self._publish(result, reply_to)
        except Exception as exc:
            self._unpublished(message, exc)
            return
        if dead_letter is None:
            self.queue.delete(message)
        else:
            self.queue.dead_letter(message, dead_letter)
        counter = {
            RequestState.SUCCEEDED: "succeeded",
            RequestState.POISONED: "poisoned",
            RequestState.CANCELED: "canceled",
        }
        self.stats.count(counter.get(result.state, "failed"))
        ended = log.info if result.state is RequestState.SUCCEEDED else log.warning
        ended("worker.request_ended", state=result.state.value, error=result.error)

    def _unpublished(self, message: Message, exc: Exception) -> None:
        reason = f"could not record or publish the outcome: {type(exc).__name__}: {exc}"
        decision = decide(
            Outcome.UNPUBLISHED,
            dequeue_count=message.dequeue_count,
            failures=message.failures,
            settings=self.settings,
        )
        self.stats.count("errors")
        if decision.action is Action.DEAD_LETTER:
            log.error("worker.outcome_unpublished", error=reason, failures=decision.failures)
            self.queue.dead_letter(message, reason)
            return
        log.warning("worker.publish_failed", error=reason, retry_in=round(decision.delay, 1))
        self.queue.hide(message, decision.delay, failed=True)

    def _poison_invalid(self, message: Message, reason: str) -> None:
        request_id = _claimed_id(message.body)
        if request_id is None or self.results.get(request_id) is not None:
            request_id = f"message-{message.message_id}"  # never overwrite a real request
        log.warning("worker.invalid_message", message_id=message.message_id, reason=reason)
        result = RequestResult(request_id=request_id, state=RequestState.POISONED, error=reason)
        self._end(message, result, None, dead_letter=reason)

    def _record(self, result: RequestResult) -> None:
        """Store ``result`` with every secret we can recognise (passwords in URLs, keys,
        tokens) scrubbed: results are shown by ``status``, health and reply queues."""
        self.results.put(RequestResult.model_validate(scrub_value(result.model_dump())))

    def _publish(self, result: RequestResult, reply_to: str | None) -> None:
        if self.sink is not None:
            self.sink.publish(reply_to, result.model_dump_json())

    # The steps --------------------------------------------------------------------------

    def advance(self, request: AutoMLRequest, current: RequestResult) -> RequestResult:
        """Run every step that is ready; return the final result, or raise NotReady."""
        if current.state is RequestState.SUCCEEDED:
            return current  # a re-sent request that already ended: nothing to redo
        engine = self.backend.engine
        if current.state is RequestState.CANCELED:
            # Its job may have been submitted while the cancel was carried out.
            with self._step("cancel"):
                engine.cancel_job(request.job_name, current.error or "canceled")
            return current
        with self._step("job"):
            status = engine.ensure_job(request)
        current = current.merged(parent_run_id=status.parent_run_id)
        if not status.state.terminal:
            waiting = status.state is JobState.QUEUED
            state = RequestState.QUEUED if waiting else RequestState.TRAINING
            self._record(current.merged(state=state, progress=status.progress))
            progress = status.progress or {}
            raise NotReady(
                f"job {status.job_name} is {status.state.value}"
                + "".join(f"; {key} {value}" for key, value in progress.items()),
                recheck_after=status.recheck_after,
            )
        if status.state is JobState.CANCELED:
            return current.merged(
                state=RequestState.CANCELED, error=status.error or "the job was canceled"
            )
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
        log.info("worker.selection_differs", engine_best=engine_best)
    return {
        "metric": selection.metric,
        "goal": selection.goal,
        "best_run_id": selection.winner.run_id,
        "best_value": selection.value,
        "engine_best_run_id": engine_best,
        "selection_reason": reason,
        "test_metrics": selection.test_metrics,
        **_threshold_fields(selection.winner.tags),
        "leaderboard": [
            LeaderboardRow(
                run_id=run.run_id, algorithm=run.algorithm, value=run.metrics[selection.metric]
            )
            for run in selection.leaderboard[:LEADERBOARD_ROWS]
        ],
    }


def _threshold_fields(tags: Mapping[str, str]) -> dict[str, object]:
    """The winner's decision threshold and how it was chosen, from its run's tags."""
    try:
        threshold = float(tags[THRESHOLD_TAG]) if THRESHOLD_TAG in tags else None
    except ValueError:
        threshold = None
    return {
        "decision_threshold": threshold,
        "decision_threshold_reason": tags.get(THRESHOLD_REASON_TAG),
    }


def _same_settings(request: AutoMLRequest, existing: RequestResult) -> None:
    """Raise InvalidRequest when ``request`` has other settings than its id's record (a
    retry may read new data under the same id, nothing else)."""
    if existing.settings_digest not in (None, request.settings_digest):
        raise InvalidRequest(
            f"request id {request.id!r} was sent before with other settings; send these "
            "as a new request"
        )


def _claimed_id(body: str) -> str | None:
    """The request id an invalid message claims, if it names a usable one."""
    try:
        data = load_json(body)
    except InvalidRequest:
        return None
    value = data.get("request_id") if isinstance(data, dict) else None
    if isinstance(value, str) and value.replace("-", "").replace("_", "").isalnum():
        return value[:63]
    return None
