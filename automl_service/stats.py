"""What the worker counts and when it last showed signs of life (for health and metrics)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class StepTiming:
    count: int = 0
    total_seconds: float = 0.0


@dataclass
class WorkerStats:
    """Thread-safe counters shared by the worker loop and the health server."""

    started_at: float = field(default_factory=time.time)
    heartbeat_at: float = field(default_factory=time.time)
    counters: Counter[str] = field(default_factory=Counter)
    in_progress: set[str] = field(default_factory=set)
    steps: dict[str, StepTiming] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def beat(self) -> None:
        with self._lock:
            self.heartbeat_at = time.time()

    def count(self, name: str, n: int = 1) -> None:
        """Counters: received, succeeded, failed, poisoned, rechecked, errors."""
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

    def heartbeat_age(self) -> float:
        with self._lock:
            return time.time() - self.heartbeat_at

    def snapshot(self) -> dict[str, object]:
        """A copy safe to read without the lock."""
        with self._lock:
            return {
                "started_at": self.started_at,
                "heartbeat_at": self.heartbeat_at,
                "counters": dict(self.counters),
                "in_progress": sorted(self.in_progress),
                "steps": {k: (v.count, v.total_seconds) for k, v in self.steps.items()},
            }
