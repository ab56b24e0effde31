"""What the worker does with a message once a step has run: one pure decision.

``classify`` names what happened (from the exception a step raised, or none); ``decide``
turns that and the message's counts into one action. No I/O: the worker carries the
action out. Every outcome has an entry in ``decide``; an exception of a type the service
does not raise on purpose is a ``BUG``: retried like a transient failure (it may be
one: a full disk, a dropped connection in a library) and logged with its traceback.
"""

from __future__ import annotations

import enum
import random
import sqlite3
from dataclasses import dataclass

from .backoff import recheck_delay, retry_delay
from .errors import (
    ConfigurationError,
    InvalidRequest,
    NotReady,
    PermanentError,
    StaleReceipt,
    TransientError,
)
from .settings import WorkerSettings


class Outcome(enum.Enum):
    """What happened when the worker advanced a request."""

    DONE = "done"  # every step ran; the request ended (succeeded or failed in its result)
    NOT_READY = "not_ready"  # a job still running, a deployment provisioning
    FAILED = "failed"  # can never succeed as it is
    TRANSIENT = "transient"  # a backend or store said "try again later"
    BUG = "bug"  # an exception the service does not raise on purpose
    BAD_MESSAGE = "bad_message"  # not a valid request
    STALE = "stale"  # another receiver holds the message now
    MISCONFIGURED = "misconfigured"  # the service itself cannot work with its settings
    UNPUBLISHED = "unpublished"  # the outcome could not be recorded or sent


class Action(enum.Enum):
    """What becomes of the message."""

    FINISH = "finish"  # publish the outcome, then delete the message
    RECHECK = "recheck"  # hide it for ``delay``; not a failure
    RETRY = "retry"  # hide it for ``delay``, counting one failed attempt
    GIVE_UP = "give_up"  # record the request failed, publish, move it to the poison queue
    POISON = "poison"  # a bad message: record and publish why, then to the poison queue
    DEAD_LETTER = "dead_letter"  # to the poison queue; the recorded outcome stays as it is
    LET_GO = "let_go"  # touch nothing: the message is someone else's
    STOP = "stop"  # release the message and stop the worker (exit code 2)


@dataclass(frozen=True)
class Decision:
    action: Action
    delay: float = 0.0
    failures: int = 0  # the message's failure count after this attempt


def classify(exc: BaseException | None) -> Outcome:
    """The outcome an exception (or none) stands for. Order matters: subclasses first."""
    if exc is None:
        return Outcome.DONE
    if isinstance(exc, InvalidRequest):
        return Outcome.BAD_MESSAGE
    if isinstance(exc, PermanentError):
        return Outcome.FAILED
    if isinstance(exc, NotReady):
        return Outcome.NOT_READY
    if isinstance(exc, StaleReceipt):
        return Outcome.STALE
    if isinstance(exc, TransientError | sqlite3.OperationalError | OSError):
        # sqlite3's "database is locked" and "disk I/O error", a full disk, a reset
        # connection: each passes on its own.
        return Outcome.TRANSIENT
    if isinstance(exc, ConfigurationError):
        return Outcome.MISCONFIGURED
    return Outcome.BUG


def decide(
    outcome: Outcome,
    *,
    dequeue_count: int,
    failures: int,
    settings: WorkerSettings,
    retry_after: float | None = None,
    recheck_after: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The action for ``outcome`` on a message received ``dequeue_count`` times that has
    failed ``failures`` times before this attempt. A not-ready step re-checks when the
    engine said it expects news (``recheck_after``), else on a schedule that grows with
    the receives."""
    if outcome in (Outcome.DONE, Outcome.FAILED):
        return Decision(Action.FINISH, failures=failures)
    if outcome is Outcome.NOT_READY:
        if recheck_after is not None:
            delay = min(max(0.0, recheck_after), settings.max_recheck_seconds)
        else:
            delay = recheck_delay(
                dequeue_count, settings.recheck_seconds, settings.max_recheck_seconds
            )
        return Decision(Action.RECHECK, delay=delay, failures=failures)
    if outcome is Outcome.BAD_MESSAGE:
        return Decision(Action.POISON, failures=failures)
    if outcome is Outcome.STALE:
        return Decision(Action.LET_GO, failures=failures)
    if outcome is Outcome.MISCONFIGURED:
        return Decision(Action.STOP, failures=failures)
    # TRANSIENT, BUG and UNPUBLISHED: one more failed attempt, then give up.
    spent = failures + 1
    if spent >= settings.max_failures:
        action = Action.DEAD_LETTER if outcome is Outcome.UNPUBLISHED else Action.GIVE_UP
        return Decision(action, failures=spent)
    delay = retry_delay(
        spent,
        settings.retry_seconds,
        settings.max_retry_seconds,
        retry_after=retry_after,
        rng=rng,
    )
    return Decision(Action.RETRY, delay=delay, failures=spent)
