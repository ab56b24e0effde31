"""Readiness checks: named checks run into one outcome, and one call at a time.

``run_checks`` turns named checks into ``{name: None or error text}``. ``SharedCall`` runs
a readiness function for ``/readyz`` in its own daemon thread: callers that arrive while a
call is under way share it, and one that waits longer than the timeout gets a failed check
while the call goes on, so a hung backend never piles up threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

Checks = dict[str, str | None]
Readiness = Callable[[], Checks]


def run_checks(checks: Mapping[str, Callable[[], object]]) -> Checks:
    """Run each named check; None where it returned, its error text where it raised.

    A readiness function is usually ``lambda: run_checks({"queue": queue.check, ...})``.
    """
    outcome: Checks = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # a failed check is an answer, not a crash
            outcome[name] = f"{type(exc).__name__}: {exc}"
        else:
            outcome[name] = None
    return outcome


class SharedCall:
    """Calls ``readiness`` one call at a time, each in its own daemon thread."""

    def __init__(self, readiness: Readiness, timeout: float) -> None:
        self.readiness = readiness
        self.timeout = timeout
        self._lock = threading.Lock()
        self._call: Future[Checks] | None = None

    def checks(self) -> Checks:
        """The outcome of the call under way, or of a new one. A call that takes longer
        than ``timeout`` seconds, or a readiness function that raises, is a failed
        ``readiness`` check."""
        call = self._current()
        try:
            return call.result(timeout=self.timeout)
        except FutureTimeout:
            return {"readiness": f"checks took longer than {self.timeout:g} s"}
        except Exception as exc:  # the readiness function itself broke: not ready
            return {"readiness": f"{type(exc).__name__}: {exc}"}

    def _current(self) -> Future[Checks]:
        """The call under way, or a new one in its own daemon thread."""
        with self._lock:
            call = self._call
            if call is None or call.done():
                call = Future()
                self._call = call
                threading.Thread(
                    target=_fulfil, args=(call, self.readiness), name="readiness", daemon=True
                ).start()
            return call


def _fulfil(call: Future[Checks], readiness: Readiness) -> None:
    try:
        call.set_result(readiness())
    except Exception as exc:
        call.set_exception(exc)
