"""Waiting until requests end: the one loop behind ``submit --wait``, the demo and the
tests that drive a worker to the end of its requests."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .errors import TransientError
from .results import RequestResult, RequestState, ResultReader

#: Told of each request's state when it is first read and whenever it changes: the
#: request id, its state (None while the store has no result for it) and the seconds
#: since the wait began.
OnChange = Callable[[str, RequestState | None, float], object]
#: Told of a request under way whenever its progress (trials, best so far, time left)
#: changes: its result and the seconds since the wait began.
OnProgress = Callable[[RequestResult, float], object]


def wait_for_results(
    results: ResultReader,
    request_ids: Sequence[str],
    *,
    timeout: float,
    step: Callable[[], object] | None = None,
    on_change: OnChange | None = None,
    on_progress: OnProgress | None = None,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> dict[str, RequestResult]:
    """Each request's terminal result, by request id in the order given, once every one of
    them has ended.

    Each round calls ``step`` first when given (e.g. a worker's ``run_once``), then reads
    every result from ``results``, then sleeps ``interval`` seconds. Raises TransientError
    when they have not all ended ``timeout`` seconds after the start (``math.inf`` waits
    for ever).
    """
    started = clock()
    seen: dict[str, RequestState | None] = {}
    progress: dict[str, object] = {}
    while True:
        if step is not None:
            step()
        current = {rid: results.get(rid) for rid in request_ids}
        for rid, result in current.items():
            state = result.state if result is not None else None
            if on_change is not None and (rid not in seen or seen[rid] != state):
                on_change(rid, state, clock() - started)
            seen[rid] = state
            if (
                on_progress is not None
                and result is not None
                and not result.state.terminal
                and result.progress
                and progress.get(rid) != result.progress
            ):
                on_progress(result, clock() - started)
                progress[rid] = result.progress
        if all(r is not None and r.state.terminal for r in current.values()):
            return {rid: r for rid, r in current.items() if r is not None}
        if clock() - started >= timeout:
            raise TransientError(f"timed out after {timeout:.0f}s waiting for {list(request_ids)}")
        sleep(interval)
