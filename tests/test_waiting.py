"""``wait_for_results``: the one loop that waits until requests end."""

from __future__ import annotations

import pytest

from automl_service.errors import TransientError
from automl_service.results import RequestResult, RequestState
from automl_service.waiting import wait_for_results


class Store:
    """A result store whose requests move through the given states, one per read round."""

    def __init__(self, plans: dict[str, list[RequestState | None]]) -> None:
        self.plans = plans
        self.round = 0

    def advance(self) -> None:
        self.round += 1

    def get(self, request_id: str) -> RequestResult | None:
        plan = self.plans[request_id]
        state = plan[min(self.round, len(plan) - 1)]
        return None if state is None else RequestResult(request_id=request_id, state=state)

    def put(self, result: RequestResult) -> None:
        raise AssertionError("never written")

    def recent(self, limit: int = 20) -> list[RequestResult]:
        return []

    def counts(self) -> dict[RequestState, int]:
        return {}


class Clock:
    """A clock that only moves when the loop sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_returns_every_terminal_result_once_all_have_ended() -> None:
    """The results come back in the order asked, after the step has run each round."""
    store = Store(
        {
            "a": [None, RequestState.TRAINING, RequestState.SUCCEEDED],
            "b": [RequestState.RECEIVED, RequestState.FAILED],
        }
    )
    clock = Clock()
    ended = wait_for_results(
        store, ["b", "a"], timeout=60, step=store.advance, clock=clock, sleep=clock.sleep
    )
    assert list(ended) == ["b", "a"]
    assert ended["a"].state is RequestState.SUCCEEDED
    assert ended["b"].state is RequestState.FAILED


def test_on_change_hears_the_first_state_and_each_change_only() -> None:
    """Each request is reported when first read and whenever its state changes."""
    training, done = RequestState.TRAINING, RequestState.SUCCEEDED
    store = Store({"a": [None, None, training, training, done]})
    clock = Clock()
    heard: list[tuple[str, RequestState | None, float]] = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        store.advance()

    wait_for_results(
        store,
        ["a"],
        timeout=60,
        on_change=lambda rid, state, elapsed: heard.append((rid, state, elapsed)),
        interval=2.0,
        clock=clock,
        sleep=sleep,
    )
    assert heard == [
        ("a", None, 0.0),
        ("a", RequestState.TRAINING, 4.0),
        ("a", RequestState.SUCCEEDED, 8.0),
    ]


def test_times_out_with_a_transient_error() -> None:
    """Requests that never end raise TransientError once the timeout has passed."""
    store = Store({"a": [RequestState.TRAINING]})
    clock = Clock()
    with pytest.raises(TransientError, match="timed out"):
        wait_for_results(store, ["a"], timeout=5, clock=clock, sleep=clock.sleep)
    assert clock.now == 5.0


class ProgressStore(Store):
    """One request training with the given progress, one per read round, then done."""

    def __init__(self, progress: list[dict[str, object] | None]) -> None:
        plan: list[RequestState | None] = [RequestState.TRAINING] * len(progress)
        super().__init__({"a": [*plan, RequestState.SUCCEEDED]})
        self.progress = progress

    def get(self, request_id: str) -> RequestResult | None:
        result = super().get(request_id)
        if result is None or self.round >= len(self.progress):
            return result
        return result.merged(progress=self.progress[self.round])


def test_on_progress_hears_each_new_progress_of_a_request_under_way() -> None:
    """News of progress is told once per change, never for an ended request."""
    first: dict[str, object] = {"trials": 1}
    second: dict[str, object] = {"trials": 4, "best": 0.9, "metric": "accuracy"}
    store = ProgressStore([None, first, first, second])
    clock = Clock()
    heard: list[tuple[object, float]] = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        store.advance()

    wait_for_results(
        store,
        ["a"],
        timeout=60,
        on_progress=lambda result, elapsed: heard.append((result.progress, elapsed)),
        interval=1.0,
        clock=clock,
        sleep=sleep,
    )
    assert heard == [(first, 1.0), (second, 3.0)]
