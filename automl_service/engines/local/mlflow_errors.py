"""MLflow's errors as the service's own, for every local part that calls MLflow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mlflow.exceptions import MlflowException

from ...errors import PermanentError, TransientError

#: MLflow error codes that mean "try again later".
TRANSIENT_CODES = frozenset({"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"})


@contextmanager
def mlflow_errors(doing: str) -> Iterator[None]:
    """Raise MLflow and connection errors as the service's own, ``doing`` naming the call:
    busy or unreachable stores (HTTP 429/5xx, a transient error code, a connection or OS
    error) as TransientError, refusals as PermanentError."""
    try:
        yield
    except MlflowException as exc:
        status: int = exc.get_http_status_code()  # type: ignore[no-untyped-call]
        if exc.error_code in TRANSIENT_CODES or status == 429 or status >= 500:
            raise TransientError(f"{doing}: {exc.message}") from exc
        raise PermanentError(f"{doing}: {exc.message}") from exc
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise TransientError(f"{doing}: {exc}") from exc
