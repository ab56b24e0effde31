"""What the worker counts and when it last showed signs of life (for health and metrics)."""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

#: Upper bounds (seconds) of the step-duration histogram: from a quick status check to an
#: hour-long training step.
STEP_BUCKETS: tuple[float, ...] = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)


@dataclass
class StepTiming:
    """How often one step ran, for how long in all, and how many runs fell in each
    ``STEP_BUCKETS`` interval (the last entry counts those over the largest bound)."""

    count: int = 0
    total_seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(STEP_BUCKETS) + 1))

    def cumulative(self) -> tuple[int, ...]:
        """Runs at or under each bound of ``STEP_BUCKETS``, as a histogram counts them."""
        running, out = 0, []
        for n in self.buckets[:-1]:
            running += n
            out.append(running)
        return tuple(out)


@dataclass
class WorkerStats:
    """Thread-safe counters shared by the worker loop and the health server.

    ``clock`` (seconds since the epoch; ``time.time`` unless a test sets its own) dates
    the start, every heartbeat and the heartbeat's age.
    """

    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    started_at: float = field(init=False)
    heartbeat_at: float = field(init=False)
    counters: Counter[str] = field(default_factory=Counter)
    in_progress: set[str] = field(default_factory=set)
    steps: dict[str, StepTiming] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.started_at = self.heartbeat_at = self.clock()

    def beat(self) -> None:
        with self._lock:
            self.heartbeat_at = self.clock()

    def count(self, name: str, n: int = 1) -> None:
        """Counters: received, succeeded, failed, canceled, poisoned, rechecked, errors."""
        with self._lock:
            self.counters[name] += n

    def track(self, request_id: str, active: bool) -> None:
        with self._lock:
            if active:
                self.in_progress.add(request_id)
            else:
                self.in_progress.discard(request_id)

    def time_step(self, step: str, seconds: float) -> None:
        with self._lock:
            timing = self.steps.setdefault(step, StepTiming())
            timing.count += 1
            timing.total_seconds += seconds
            timing.buckets[bisect.bisect_left(STEP_BUCKETS, seconds)] += 1

    def heartbeat_age(self) -> float:
        with self._lock:
            return self.clock() - self.heartbeat_at

    def snapshot(self) -> dict[str, object]:
        """A copy safe to read without the lock. ``steps`` maps a step to (count, total
        seconds); ``step_buckets`` maps it to its cumulative counts per ``STEP_BUCKETS``."""
        with self._lock:
            return {
                "started_at": self.started_at,
                "heartbeat_at": self.heartbeat_at,
                "counters": dict(self.counters),
                "in_progress": sorted(self.in_progress),
                "steps": {k: (v.count, v.total_seconds) for k, v in self.steps.items()},
                "step_buckets": {k: v.cumulative() for k, v in self.steps.items()},
            }
