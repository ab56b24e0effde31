"""The one Azure retry policy: Retry-After parsing, wait arithmetic, what is raised."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime
from types import SimpleNamespace

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from fixtures_retry import FAST

from automl_service.azure_retry import (
    RetryPolicy,
    backoff,
    call,
    call_with_retry,
    describe,
    parse_retry_after,
    retry_after,
)
from automl_service.errors import PermanentError, TransientError

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 1.5 ", 1.5),
        ("Sat, 01 Mar 2025 12:00:30 GMT", 30.0),
        ("Sat, 01 Mar 2025 12:00:30 -0000", 30.0),
        ("Sat, 01 Mar 2025 11:59:00 GMT", 0.0),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        ("soon", None),
        ("Sat, 99 Foo 2025 12:00:30 GMT", None),
    ],
)
def test_retry_after_values(value: str, expected: float | None) -> None:
    """Delta-seconds and HTTP dates are read; past dates are 0; garbage and negatives are
    ignored (None)."""
    assert parse_retry_after(value, now=NOW) == expected


def _error(status: int, headers: dict[str, str] | None = None) -> HttpResponseError:
    exc = HttpResponseError(message=f"failed with {status}\nRequestId: abc")
    exc.status_code = status
    exc.response = SimpleNamespace(headers=headers or {})
    return exc


def test_retry_after_read_from_headers() -> None:
    """Milliseconds headers win over Retry-After; an HTTP date in the future counts."""
    assert retry_after(_error(503, {"retry-after-ms": "1500", "Retry-After": "9"})) == 1.5
    assert retry_after(_error(429, {"Retry-After": "9"})) == 9.0
    future = format_datetime(datetime.fromtimestamp(4_000_000_000, UTC), usegmt=True)
    assert (retry_after(_error(429, {"Retry-After": future})) or 0) > 1e8
    assert retry_after(_error(429, {"Retry-After": "later"})) is None
    assert retry_after(ValueError("no response")) is None


def test_waits_grow_honour_retry_after_and_stay_under_the_cap() -> None:
    """Wait ceilings grow with attempts, never undercut Retry-After, never pass the cap."""
    policy = RetryPolicy(base_seconds=0.5, max_wait_seconds=10.0)
    plain = _error(500)
    ceilings = [
        max(backoff(n, plain, policy, random.Random(i)) for i in range(200)) for n in (1, 2, 3)
    ]
    assert ceilings == sorted(ceilings) and ceilings[0] <= 0.5
    assert backoff(1, _error(500, {"Retry-After": "7"}), policy, random.Random(0)) >= 7.0
    assert backoff(9, _error(500, {"Retry-After": "60"}), policy, random.Random(0)) == 10.0


def test_describe_is_one_line_with_status() -> None:
    """A failure is described by its first line and HTTP status, without request ids."""
    assert describe(_error(503)) == "failed with 503 (HTTP 503)"


def test_spent_retries_raise_transient_with_the_attempts_counted() -> None:
    """A call that keeps failing transiently is tried ``attempts`` times, then raises
    TransientError."""
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        raise ServiceRequestError("refused")

    with pytest.raises(TransientError, match="after retries"):
        call_with_retry("op", flaky, FAST, sleep=lambda _: None)
    assert len(calls) == FAST.attempts


def test_long_retry_after_goes_back_to_the_queue() -> None:
    """A server asking for a wait longer than the cap is not retried here: TransientError
    carries its Retry-After at once."""
    calls: list[int] = []

    def throttled() -> None:
        calls.append(1)
        raise _error(429, {"Retry-After": "600"})

    with pytest.raises(TransientError) as info:
        call("op", throttled, policy=FAST)
    assert len(calls) == 1 and info.value.retry_after == 600.0


def test_other_errors_pass_through_or_become_permanent() -> None:
    """``call_with_retry`` lets a 400 through unchanged; ``call`` makes it PermanentError."""
    with pytest.raises(HttpResponseError):
        call_with_retry("op", lambda: (_ for _ in ()).throw(_error(400)), FAST)
    with pytest.raises(PermanentError, match="HTTP 400"):
        call("op", lambda: (_ for _ in ()).throw(_error(400)), policy=FAST)


def test_a_fault_of_ours_inside_a_call_is_not_called_permanent() -> None:
    """An exception that is not Azure's (a bug of the service's) reaches the worker as it
    is, for the settle policy to log with its traceback and retry, instead of failing the
    request for good."""
    calls = 0

    def buggy() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("properties")

    with pytest.raises(KeyError):
        call("op", buggy, policy=FAST)
    assert calls == 1


def test_nested_calls_do_not_multiply_attempts() -> None:
    """A call whose inner call already spent its retries is not retried again."""
    calls: list[int] = []

    def inner() -> None:
        calls.append(1)
        raise ServiceRequestError("refused")

    with pytest.raises(TransientError):
        call_with_retry(
            "outer",
            lambda: call_with_retry("inner", inner, FAST, sleep=lambda _: None),
            FAST,
            sleep=lambda _: None,
        )
    assert len(calls) == FAST.attempts


def test_transient_error_raised_inside_a_call_is_retried() -> None:
    """A TransientError the call raises itself ("not yet") is retried like a 503."""
    calls: list[int] = []

    def not_yet() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("not yet")
        return "done"

    assert call_with_retry("op", not_yet, FAST, sleep=lambda _: None) == "done"
