"""Delay arithmetic for re-checks, retries and idle polling."""

from __future__ import annotations

import itertools
import random

from automl_service.backoff import idle_delay, recheck_delay, retry_delay


def test_recheck_grows_and_caps() -> None:
    """Re-checks of a long job grow from the base to the cap and stay there."""
    delays = [recheck_delay(n, 15.0, 300.0) for n in range(1, 30)]
    assert delays[0] == 15.0
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == 300.0


def test_an_hour_long_job_costs_few_checks() -> None:
    """With the default base and cap, an hour of training takes well under 40 checks."""
    elapsed, checks = 0.0, 0
    while elapsed < 3600:
        checks += 1
        elapsed += recheck_delay(checks, 15.0, 300.0)
    assert checks < 40


def test_retry_delay_has_jitter_within_bounds_and_honours_retry_after() -> None:
    """Retry delays stay between half and all of the exponential ceiling, never below
    Retry-After."""
    rng = random.Random(7)
    for failures in range(1, 8):
        ceiling = min(60.0, 2.0 * 2 ** (failures - 1))
        delay = retry_delay(failures, 2.0, 60.0, rng=rng)
        assert ceiling / 2 <= delay <= ceiling
    assert retry_delay(1, 2.0, 60.0, retry_after=30.0, rng=rng) >= 30.0
    assert retry_delay(1, 2.0, 60.0, retry_after=1e6, rng=rng) == 60.0


def test_idle_polling_backs_off() -> None:
    """An empty queue is polled less and less often, up to the cap."""
    assert [idle_delay(n, 1.0, 8.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]
