"""Retries for Azure ML and workspace-MLflow calls: transient failures only, with jitter.

Transient: HTTP 408/429/5xx and connection errors (refused, reset, timed out). A 429 or
503 with ``Retry-After`` waits at least that long. Everything else (400, 401, 403, 404 on
create, SDK validation) is permanent and raised at once as ``PermanentError`` with the
service's own message. When the attempts run out, ``TransientError`` is raised so the
worker checks the request again later.

The SDK's own azure-core retry policy is switched off in ``client.py`` (``retry_total=0``)
so this is the one retry layer, and what it costs is visible.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from ...errors import AutoMLServiceError, PermanentError, TransientError
from ...logs import get_logger

T = TypeVar("T")

log = get_logger(__name__)

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one call before giving the request back to the queue."""

    attempts: int = 5
    initial_seconds: float = 0.5
    max_seconds: float = 20.0  # cap of one wait
    jitter_seconds: float = 0.5
    total_seconds: float = 60.0  # cap of all waits for one call

    def wait_seconds(self, attempt: int, retry_after: float | None) -> float:
        """The wait before attempt ``attempt + 1``: exponential with jitter, never shorter
        than the server's Retry-After, never longer than ``max_seconds``."""
        backoff = wait_exponential_jitter(
            multiplier=self.initial_seconds, max=self.max_seconds, jitter=self.jitter_seconds
        )
        state = RetryCallState(Retrying(), None, (), {})
        state.attempt_number = attempt
        base = backoff(state)
        if retry_after is not None:
            base = max(base, retry_after)
        return float(min(base, self.max_seconds))


#: No waiting at all; for tests that count attempts.
FAST = RetryPolicy(attempts=4, initial_seconds=0.01, max_seconds=2.0, jitter_seconds=0.01)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status behind an azure-core or MLflow error, if any."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    getter = getattr(exc, "get_http_status_code", None)
    if callable(getter):
        value = getter()
        return value if isinstance(value, int) else None
    return None


def retry_after_of(exc: BaseException) -> float | None:
    """Seconds from a ``Retry-After`` header (delta or HTTP date) on the error's response."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time())


def is_transient(exc: BaseException) -> bool:
    """True for failures worth another attempt: 408/429/5xx and connection problems."""
    from azure.core.exceptions import (
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError):
        return True
    import requests

    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    status = status_of(exc)
    return status is not None and status in TRANSIENT_STATUS


def describe(exc: BaseException) -> str:
    """A one-line reason from an SDK or HTTP error (no headers, no tokens)."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    first = str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__
    status = status_of(exc)
    return f"{first} (HTTP {status})" if status else first


def classify(exc: BaseException, what: str) -> AutoMLServiceError:
    """The service error for a failed call: transient (retry later) or permanent."""
    if isinstance(exc, AutoMLServiceError):
        return exc
    if is_transient(exc):
        return TransientError(f"{what}: {describe(exc)}", retry_after=retry_after_of(exc))
    return PermanentError(f"{what}: {describe(exc)}")


def call(
    what: str,
    fn: Callable[..., T],
    *args: Any,
    policy: RetryPolicy | None = None,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)``, retried on transient failures under ``policy``.

    Raises TransientError when attempts run out (or the server asks for a wait longer
    than the policy allows), PermanentError at once for anything else. Errors the caller
    must see as they are (``ResourceNotFoundError`` on a lookup) are let through by
    catching them inside ``fn``.
    """
    policy = policy or RetryPolicy()

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = retry_after_of(exc) if exc else None
        seconds = policy.wait_seconds(state.attempt_number, after)
        log.info(
            "azure_call_retry",
            call=what,
            attempt=state.attempt_number,
            wait=seconds,
            reason=describe(exc) if exc else None,
        )
        return seconds

    retrying = Retrying(
        retry=retry_if_exception(
            lambda e: is_transient(e) and (retry_after_of(e) or 0) <= policy.max_seconds
        ),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.total_seconds),
        wait=wait,
        reraise=True,
    )
    try:
        return retrying(fn, *args, **kwargs)
    except Exception as exc:
        raise classify(exc, what) from exc


def get_or_none(
    what: str, fn: Callable[..., T], *args: Any, policy: RetryPolicy | None = None, **kwargs: Any
) -> T | None:
    """Like ``call`` for a lookup: a 404 answers None instead of failing."""
    from azure.core.exceptions import ResourceNotFoundError

    def attempt() -> T | None:
        try:
            return fn(*args, **kwargs)
        except ResourceNotFoundError:
            return None

    return call(what, attempt, policy=policy)
