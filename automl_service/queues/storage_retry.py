"""Retrying Azure Storage calls: which errors are transient, how long to wait, and how the
rest map onto the service's error hierarchy.

The SDK's own retry policy is switched off on our clients (``retry_total=0``) so that this
is the one retry layer: tenacity, on connection errors and HTTP 408/429/5xx only, with
exponential backoff and full jitter, capped in attempts and in total time. Throttling
(503 ServerBusy, 429) waits longer than other transient errors, and never less than a
server's Retry-After.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from ..errors import ConfigurationError, InvalidRequest, PermanentError, TransientError
from ..logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
THROTTLED_CODES = frozenset({"ServerBusy", "OperationTimedOut"})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one storage call is retried before it raises TransientError."""

    attempts: int = 5
    base_seconds: float = 0.5
    #: Base wait after throttling (503 ServerBusy, 429): the account asked us to slow down.
    throttled_base_seconds: float = 2.0
    max_wait_seconds: float = 15.0
    #: No new attempt starts once this much time has passed since the first.
    max_total_seconds: float = 45.0


def error_code(exc: BaseException) -> str | None:
    """The storage error code (``x-ms-error-code``) of an SDK error, as a plain string."""
    code = getattr(exc, "error_code", None)
    if code is None:
        return None
    return str(getattr(code, "value", code))


def is_transient(exc: BaseException) -> bool:
    """Connection failures and HTTP 408/429/5xx; never authentication or client errors."""
    if isinstance(exc, ClientAuthenticationError):
        return False
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return True
    if isinstance(exc, HttpResponseError):
        return exc.status_code in TRANSIENT_STATUS
    return False


def is_throttled(exc: BaseException) -> bool:
    if not isinstance(exc, HttpResponseError):
        return False
    return exc.status_code == 429 or error_code(exc) in THROTTLED_CODES


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``), when it said."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return float(value) / 1000.0
            except ValueError:
                pass
    value = headers.get("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: rare from storage; the backoff stands


def backoff(
    attempt: int, exc: BaseException | None, policy: RetryPolicy, rng: random.Random
) -> float:
    """Seconds to wait before attempt ``attempt + 1``: full jitter over an exponential
    ceiling, a longer base when throttled, never under Retry-After, capped."""
    throttled = exc is not None and is_throttled(exc)
    base = policy.throttled_base_seconds if throttled else policy.base_seconds
    ceiling = min(policy.max_wait_seconds, base * 2 ** max(0, min(attempt - 1, 30)))
    wait = rng.uniform(ceiling / 2, ceiling) if throttled else rng.uniform(0, ceiling)
    asked = retry_after(exc) if exc is not None else None
    if asked is not None:
        wait = max(wait, min(asked, policy.max_wait_seconds))
    return wait


def call_with_retry(
    what: str,
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """``fn()``, retried on transient storage errors. Raises TransientError once the
    policy is spent; any other error passes through unchanged for the caller to map."""
    rng = rng or random.Random()

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        return backoff(state.attempt_number, exc, policy, rng)

    def stop(state: RetryCallState) -> bool:
        if stop_after_attempt(policy.attempts)(state):
            return True
        return (state.seconds_since_start or 0.0) >= policy.max_total_seconds

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        log.warning(
            "storage call retried",
            call=what,
            attempt=state.attempt_number,
            error=type(exc).__name__ if exc else None,
            status=getattr(exc, "status_code", None),
            code=error_code(exc) if exc else None,
            wait=round(state.upcoming_sleep, 2),
        )

    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait,
        stop=stop,
        before_sleep=before_sleep,
        reraise=True,
        sleep=sleep or time.sleep,
    )
    try:
        return retrying(fn)
    except AzureError as exc:
        if is_transient(exc):
            raise TransientError(
                f"{what}: storage still unavailable after retries: {describe(exc)}",
                retry_after=retry_after(exc),
            ) from exc
        raise


def describe(exc: BaseException) -> str:
    """One line about a storage error, without request ids or secrets."""
    status = getattr(exc, "status_code", None)
    code = error_code(exc)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    parts = [p for p in (str(status) if status else None, code, first) if p]
    return " ".join(parts)


def permanent(what: str, exc: AzureError) -> Exception:
    """The service error for a storage error that retrying cannot fix."""
    text = f"{what}: {describe(exc)}"
    if isinstance(exc, ClientAuthenticationError) or getattr(exc, "status_code", None) in (
        401,
        403,
    ):
        return ConfigurationError(f"{text} (check the credential and its role on the queue)")
    code = error_code(exc)
    if code == "QueueNotFound":
        return ConfigurationError(f"{text} (create it, or allow queue.create_queues)")
    if code in ("RequestBodyTooLarge", "MessageTooLarge") or getattr(exc, "status_code", 0) == 413:
        return InvalidRequest(text)
    return PermanentError(text)
