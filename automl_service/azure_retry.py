"""Retrying Azure calls (Storage queues, Azure ML, workspace MLflow): which failures are
transient, how long to wait, and what is raised when retrying is over.

The SDKs' own azure-core retry policies are switched off on our clients
(``retry_total=0``) so that this is the one retry layer, and what it costs is visible:
tenacity, on connection errors and HTTP 408/429/5xx only, with exponential backoff and
full jitter, capped in attempts, in one wait and in total time. Throttling (429, 503
ServerBusy) waits longer than other transient errors and never less than the server's
``Retry-After``; a server asking for a wait longer than one wait may last is not retried
here, its request goes back to the queue with that delay instead.

Promises:

* a transient failure that outlasts the policy raises ``TransientError`` (carrying the
  server's Retry-After, when it gave one), which no enclosing call retries again;
* a service error (``AutoMLServiceError``) raised by the call passes through unchanged;
* ``call_with_retry`` lets any other error through as it is, for the caller to map;
  ``call`` turns an error Azure reports (``AzureError``) into ``PermanentError`` with
  the service's own message and lets any other (a fault of ours) through as it is.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

import requests
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)

from .errors import AutoMLServiceError, PermanentError, TransientError
from .logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
#: Storage error codes that mean "slow down" even without a 429.
THROTTLED_CODES = frozenset({"ServerBusy", "OperationTimedOut"})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call is retried before it raises TransientError."""

    attempts: int = 5
    base_seconds: float = 0.5
    #: Base wait after throttling (429, 503 ServerBusy): the server asked us to slow down.
    throttled_base_seconds: float = 2.0
    #: Cap of one wait; a longer Retry-After is left to the queue's re-delivery.
    max_wait_seconds: float = 15.0
    #: No new attempt starts once this much time has passed since the first.
    max_total_seconds: float = 45.0


#: The budget for Azure Storage queue calls: the worker's loop waits on them.
STORAGE = RetryPolicy()
#: The budget for Azure ML and workspace-MLflow calls: slower services, longer waits.
WORKSPACE = RetryPolicy(max_wait_seconds=20.0, max_total_seconds=60.0)


class RetriesSpent(TransientError):
    """A transient failure this layer already retried: a call around the call that raised
    it does not retry it again (attempts would multiply)."""


def error_code(exc: BaseException) -> str | None:
    """The service error code (``x-ms-error-code``) of an SDK error, as a plain string."""
    code = getattr(exc, "error_code", None)
    if code is None:
        return None
    return str(getattr(code, "value", code))


def status_of(exc: BaseException) -> int | None:
    """The HTTP status behind an azure-core, MLflow or requests error, if any."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    getter = getattr(exc, "get_http_status_code", None)
    if callable(getter):
        value = getter()
        return value if isinstance(value, int) else None
    response_status = getattr(getattr(exc, "response", None), "status_code", None)
    return response_status if isinstance(response_status, int) else None


def is_transient(exc: BaseException) -> bool:
    """Connection failures, HTTP 408/429/5xx and TransientError raised inside the call;
    never authentication failures, nor failures whose retries are already spent."""
    if isinstance(exc, ClientAuthenticationError | RetriesSpent):
        return False
    if isinstance(exc, TransientError):
        return True
    if isinstance(
        exc,
        ServiceRequestError
        | ServiceResponseError
        | ConnectionError
        | TimeoutError
        | requests.ConnectionError
        | requests.Timeout,
    ):
        return True
    status = status_of(exc)
    return status is not None and status in TRANSIENT_STATUS


def is_throttled(exc: BaseException) -> bool:
    """The server asked us to slow down: 429, or a storage busy/timeout code."""
    if not isinstance(exc, HttpResponseError):
        return False
    return exc.status_code == 429 or error_code(exc) in THROTTLED_CODES


def parse_retry_after(value: str, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    A date in the past answers 0. Anything else (empty, garbage, negative or non-finite
    seconds) answers None: the header is ignored and the backoff stands.
    """
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``Retry-After``), when
    it said so on the error's response."""
    response = getattr(exc, "response", None)
    headers: Mapping[str, Any] | None = getattr(response, "headers", None)
    if not headers:
        return None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            millis = parse_retry_after(str(value))
            if millis is not None:
                return millis / 1000.0
    value = headers.get("Retry-After") or headers.get("retry-after")
    return parse_retry_after(str(value)) if value else None


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


def describe(exc: BaseException) -> str:
    """One line about a failed call: its first message line, HTTP status and error code,
    without headers, request ids or tokens."""
    message = str(getattr(exc, "message", None) or exc).strip()
    first = message.splitlines()[0] if message else type(exc).__name__
    status = status_of(exc)
    code = error_code(exc)
    detail = " ".join(p for p in (f"HTTP {status}" if status else None, code) if p)
    return f"{first} ({detail})" if detail else first


def call_with_retry(
    what: str,
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """``fn()``, retried on transient errors under ``policy``. Raises TransientError once
    the policy is spent (or the server asks for a longer wait than it allows); a service
    error passes through, and so does any other error, unchanged, for the caller to map."""
    rng = rng or random.Random()

    def retryable(exc: BaseException) -> bool:
        return is_transient(exc) and (retry_after(exc) or 0.0) <= policy.max_wait_seconds

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        return backoff(state.attempt_number, exc, policy, rng)

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        log.warning(
            "azure.call_retried",
            call=what,
            attempt=state.attempt_number,
            status=status_of(exc) if exc else None,
            code=error_code(exc) if exc else None,
            reason=describe(exc) if exc else None,
            wait=round(state.upcoming_sleep, 2),
        )

    retrying = Retrying(
        retry=retry_if_exception(retryable),
        wait=wait,
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_total_seconds),
        before_sleep=before_sleep,
        reraise=True,
        sleep=sleep or time.sleep,
    )
    try:
        return retrying(fn)
    except AutoMLServiceError:
        raise
    except Exception as exc:
        if not is_transient(exc):
            raise
        asked = retry_after(exc)
        if asked is not None and asked > policy.max_wait_seconds:
            reason = f"the server asks to wait {asked:.0f}s"
        else:
            reason = "still unavailable after retries"
        raise RetriesSpent(f"{what}: {reason}: {describe(exc)}", retry_after=asked) from exc


def call(
    what: str,
    fn: Callable[..., T],
    *args: Any,
    policy: RetryPolicy | None = None,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)``, retried on transient failures under ``policy`` (default
    ``WORKSPACE``).

    Raises TransientError when retrying is over, and PermanentError at once for any other
    error Azure or its SDK reports (an ``AzureError``: a refused request, a validation
    error). Any other exception is raised as it is: it is a fault of the service's own,
    which the worker's settle policy logs with its traceback and retries. Errors the
    caller must see as they are (``ResourceNotFoundError`` on a lookup) are let through by
    catching them inside ``fn``.
    """
    try:
        return call_with_retry(what, lambda: fn(*args, **kwargs), policy or WORKSPACE)
    except AzureError as exc:
        raise PermanentError(f"{what}: {describe(exc)}") from exc


def get_or_none(
    what: str, fn: Callable[..., T], *args: Any, policy: RetryPolicy | None = None, **kwargs: Any
) -> T | None:
    """Like ``call`` for a lookup: a 404 answers None instead of failing."""

    def attempt() -> T | None:
        try:
            return fn(*args, **kwargs)
        except ResourceNotFoundError:
            return None

    return call(what, attempt, policy=policy)
