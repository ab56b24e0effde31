"""``BackgroundVerdicts``: slow decisions worked out off the worker's loop, once per key.

Scoring two models on the same rows may first download both (once per version) and the
test rows: seconds to minutes. The worker's loop must not wait on it, so the first call
for a key starts the work in a background thread and raises NotReady; the calls after it
(the worker's re-checks) raise NotReady until the answer is there, then get it, again
and again, until the caller ``forget``s it once it has acted on it (recorded it in
Azure, or returned it). One piece of work runs at a time (the machine is shared).

Nothing here is persisted: after a restart the work is done again, with the same inputs
and so the same answer (the model versions are cached on disk by then). A failed piece
of work is raised once to the caller and forgotten, so the next call starts it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ...errors import NotReady
from ...logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")

#: When to look again while a piece of work runs (seconds).
RECHECK_SECONDS = 5.0


@dataclass
class _Work(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    value: T | None = None
    error: BaseException | None = None


class BackgroundVerdicts(Generic[T]):
    """Answers by key, each worked out once in a background thread."""

    def __init__(self, *, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()
        self._work: dict[Hashable, _Work[T]] = {}
        self._recheck = recheck_seconds

    def get(self, key: Hashable, work: Callable[[], T], what: str) -> T:
        """The answer of ``work`` for ``key``; raises NotReady (saying ``what`` is being
        done) while it runs, and what ``work`` raised, once, when it failed."""
        with self._lock:
            entry = self._work.get(key)
            if entry is None:
                entry = self._work[key] = _Work()
                thread = threading.Thread(
                    target=self._run, args=(entry, work), name=f"verdict-{what}", daemon=True
                )
                thread.start()
        if not entry.done.wait(timeout=0.05):
            raise NotReady(what, recheck_after=self._recheck)
        if entry.error is not None:
            self.forget(key)
            raise entry.error
        return entry.value  # type: ignore[return-value]  # set when done without error

    def forget(self, key: Hashable) -> None:
        """Drop the answer for ``key`` (done with it); a later ``get`` works it out again."""
        with self._lock:
            self._work.pop(key, None)

    def forget_all(self, prefix: tuple[Hashable, ...]) -> None:
        """Drop the answers whose (tuple) keys begin with ``prefix``."""
        with self._lock:
            for key in [
                k for k in self._work if isinstance(k, tuple) and k[: len(prefix)] == prefix
            ]:
                del self._work[key]

    def _run(self, entry: _Work[T], work: Callable[[], T]) -> None:
        try:
            with self._one_at_a_time:
                entry.value = work()
        except BaseException as exc:  # handed to the caller on its next get
            log.warning("verdict.failed", error=f"{type(exc).__name__}: {exc}")
            entry.error = exc
        finally:
            entry.done.set()
