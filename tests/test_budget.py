"""The whole-job time budget: what the search gets and what may run after it (pure)."""

from __future__ import annotations

import pytest
from fixtures_worker import FakeClock

from automl_service.engines.local.budget import (
    MIN_RESERVE_SECONDS,
    MIN_SEARCH_SECONDS,
    SUGGESTED_SEARCH_SECONDS,
    Budget,
)


def test_the_search_gets_what_is_left_less_a_reserve() -> None:
    clock = FakeClock(1000.0)
    budget = Budget(20, started_at=1000.0, clock=clock)
    clock.now = 1002.5  # start-up and reading the data took 2.5 s
    assert budget.left() == pytest.approx(17.5)
    assert budget.search_seconds() == pytest.approx(17.5 - 2.0)  # a tenth of 20 s
    long = Budget(3600, started_at=1000.0, clock=clock)
    assert long.search_seconds() == pytest.approx(3600 - 2.5 - 360)
    short = Budget(5, started_at=1000.0, clock=clock)
    assert short.search_seconds() == pytest.approx(2.5 / 2)  # the reserve capped at half
    roomy = Budget(10, started_at=1000.0, clock=clock)
    assert roomy.search_seconds() == pytest.approx(7.5 - MIN_RESERVE_SECONDS)


def test_the_reserve_never_takes_more_than_half_of_what_is_left() -> None:
    clock = FakeClock(1000.0)
    budget = Budget(600, started_at=1000.0, clock=clock)
    clock.now = 1000.0 + 600 - 10  # ten seconds left
    assert budget.search_seconds() == pytest.approx(5.0)


def test_past_the_deadline_the_search_still_gets_its_minimum_and_nothing_else_fits() -> None:
    clock = FakeClock(1000.0)
    budget = Budget(10, started_at=1000.0, clock=clock)
    assert budget.allows(10) and not budget.allows(10.01)
    clock.now = 1012.0
    assert budget.left() == pytest.approx(-2.0)
    assert budget.search_seconds() == MIN_SEARCH_SECONDS
    assert not budget.allows(0)


def test_a_refit_is_estimated_from_flamls_own_evaluation_time() -> None:
    """FLAML's estimate: the learner's best evaluation time scaled by rows; unknown is 0."""
    from types import SimpleNamespace

    from automl_service.engines.local.search import refit_estimate

    lgbm = SimpleNamespace(time2eval_best=2.0, best_config_sample_size=10_000)
    automl = SimpleNamespace(_search_states={"lgbm": lgbm, "rf": SimpleNamespace()})
    assert refit_estimate(automl, "lgbm", 1_000_000) == pytest.approx(200.0)
    assert refit_estimate(automl, "rf", 1_000_000) == 0.0
    assert refit_estimate(automl, None, 1_000_000) == 0.0


def test_a_limit_spent_before_the_search_is_refused_with_one_that_would_do() -> None:
    clock = FakeClock(1000.0)
    budget = Budget(5, started_at=1000.0, clock=clock)
    clock.now = 1004.0  # one second left: the search runs
    assert budget.too_small("reading", took=3.0) is None
    clock.now = 1006.2  # start-up and reading took longer than the whole limit...
    # ...but when reading took little, a slow start is not the data's fault: no refusal.
    assert budget.too_small("starting and reading 150 rows", took=0.1) is None
    reason = budget.too_small("starting and reading 1,000,000 rows", took=4.9)
    assert reason is not None
    assert "limits.timeout_seconds = 5 is too small" in reason
    assert "starting and reading 1,000,000 rows took 6.2 s" in reason
    suggested = budget.suggested_seconds()
    assert f"at least {suggested} s" in reason
    # The suggestion, with the same 6.2 s spent, leaves the promised search time.
    again = Budget(suggested, started_at=1000.0, clock=clock)
    assert again.search_seconds() >= SUGGESTED_SEARCH_SECONDS
    assert Budget(suggested - 1, started_at=1000.0, clock=clock).search_seconds() < (
        SUGGESTED_SEARCH_SECONDS
    )
