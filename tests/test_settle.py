"""The settle policy as a table: every outcome and count maps to one action."""

from __future__ import annotations

import random
import sqlite3

import pytest

from automl_service.errors import (
    ConfigurationError,
    InvalidRequest,
    JobFailed,
    NoEligibleRun,
    NotReady,
    PermanentError,
    StaleReceipt,
    TransientError,
)
from automl_service.settings import WorkerSettings
from automl_service.settle import Action, Outcome, classify, decide

SETTINGS = WorkerSettings(
    recheck_seconds=10,
    max_recheck_seconds=100,
    retry_seconds=4,
    max_retry_seconds=60,
    max_failures=3,
)


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (None, Outcome.DONE),
        (NotReady("job running"), Outcome.NOT_READY),
        (JobFailed("job failed"), Outcome.FAILED),
        (NoEligibleRun("no run"), Outcome.FAILED),
        (PermanentError("cannot deploy"), Outcome.FAILED),
        (InvalidRequest("not JSON"), Outcome.BAD_MESSAGE),
        (TransientError("503"), Outcome.TRANSIENT),
        (sqlite3.OperationalError("database is locked"), Outcome.TRANSIENT),
        (OSError(28, "No space left on device"), Outcome.TRANSIENT),
        (ConnectionResetError(), Outcome.TRANSIENT),
        (StaleReceipt("taken"), Outcome.STALE),
        (ConfigurationError("no workspace"), Outcome.MISCONFIGURED),
        (KeyError("a fault of ours"), Outcome.BUG),
        (ValueError("Exceeds the limit (4300 digits)"), Outcome.BUG),
        (RecursionError(), Outcome.BUG),
    ],
)
def test_every_exception_has_an_outcome(exc: BaseException | None, outcome: Outcome) -> None:
    """Each kind of exception a step can raise is classified; unknown ones are bugs."""
    assert classify(exc) is outcome


@pytest.mark.parametrize(
    ("outcome", "failures", "action", "failures_after"),
    [
        (Outcome.DONE, 0, Action.FINISH, 0),
        (Outcome.DONE, 2, Action.FINISH, 2),
        (Outcome.FAILED, 0, Action.FINISH, 0),
        (Outcome.NOT_READY, 2, Action.RECHECK, 2),
        (Outcome.BAD_MESSAGE, 0, Action.POISON, 0),
        (Outcome.STALE, 1, Action.LET_GO, 1),
        (Outcome.MISCONFIGURED, 0, Action.STOP, 0),
        (Outcome.TRANSIENT, 0, Action.RETRY, 1),
        (Outcome.TRANSIENT, 1, Action.RETRY, 2),
        (Outcome.TRANSIENT, 2, Action.GIVE_UP, 3),
        (Outcome.BUG, 0, Action.RETRY, 1),
        (Outcome.BUG, 2, Action.GIVE_UP, 3),
        (Outcome.UNPUBLISHED, 0, Action.RETRY, 1),
        (Outcome.UNPUBLISHED, 2, Action.DEAD_LETTER, 3),
    ],
)
def test_each_outcome_and_count_has_one_action(
    outcome: Outcome, failures: int, action: Action, failures_after: int
) -> None:
    """The action depends on the outcome and, for failures, on the budget left."""
    decision = decide(outcome, dequeue_count=5, failures=failures, settings=SETTINGS)
    assert decision.action is action
    assert decision.failures == failures_after


def test_every_outcome_is_decided() -> None:
    """No outcome falls through: each gives an action for a fresh and a spent message."""
    for outcome in Outcome:
        for failures in (0, SETTINGS.max_failures - 1):
            decide(outcome, dequeue_count=1, failures=failures, settings=SETTINGS)


def test_not_ready_rechecks_grow_with_receives_not_failures() -> None:
    """A re-check waits longer the more often the message came back, up to the cap, and
    never spends the failure budget."""
    delays = [
        decide(Outcome.NOT_READY, dequeue_count=n, failures=0, settings=SETTINGS).delay
        for n in (1, 2, 3, 20)
    ]
    assert delays == [10, 15, 22.5, 100]


def test_retries_back_off_with_jitter_and_honour_retry_after() -> None:
    """A retry waits between half and all of the doubled base, and at least Retry-After."""
    rng = random.Random(7)
    first = decide(Outcome.TRANSIENT, dequeue_count=1, failures=0, settings=SETTINGS, rng=rng)
    second = decide(Outcome.TRANSIENT, dequeue_count=2, failures=1, settings=SETTINGS, rng=rng)
    assert 2 <= first.delay <= 4
    assert 4 <= second.delay <= 8
    told = decide(
        Outcome.TRANSIENT, dequeue_count=1, failures=0, settings=SETTINGS, retry_after=30, rng=rng
    )
    assert told.delay >= 30


def test_a_recheck_aimed_by_the_engine_comes_when_asked() -> None:
    """When the engine says when to look again (a local job's deadline, a free slot),
    the re-check comes then, within the cap, whatever the receive count."""
    aimed = [
        decide(
            Outcome.NOT_READY, dequeue_count=n, failures=0, settings=SETTINGS, recheck_after=after
        ).delay
        for n, after in ((1, 2.0), (30, 2.0), (5, 1000.0), (5, -3.0))
    ]
    assert aimed == [2.0, 2.0, 100, 0.0]
