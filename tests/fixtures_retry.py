"""Retry budgets for tests: small, so that failing paths end in seconds."""

from __future__ import annotations

from automl_service.azure_retry import RetryPolicy

#: Short waits and few attempts; tests count attempts and time throttled waits with it.
FAST = RetryPolicy(
    attempts=4,
    base_seconds=0.05,
    throttled_base_seconds=0.2,
    max_wait_seconds=2.0,
    max_total_seconds=10.0,
)
