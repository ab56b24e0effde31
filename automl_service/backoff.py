"""Pure delay arithmetic for re-checks, retries and idle polling."""

from __future__ import annotations

import random


def recheck_delay(checks: int, base: float, cap: float) -> float:
    """How long a not-ready request stays hidden: grows 1.5x per check up to ``cap``,
    so a one-hour job costs tens of status checks, not hundreds."""
    return float(min(cap, base * 1.5 ** max(0, min(checks - 1, 40))))


def retry_delay(
    failures: int,
    base: float,
    cap: float,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with full jitter, never shorter than a server's Retry-After."""
    rng = rng or random.Random()
    ceiling = min(cap, base * 2 ** max(0, min(failures - 1, 30)))
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def idle_delay(empty_polls: int, base: float, cap: float) -> float:
    """Polling an empty queue backs off (doubling) up to ``cap`` instead of spinning."""
    return float(min(cap, base * 2 ** max(0, min(empty_polls - 1, 30))))
