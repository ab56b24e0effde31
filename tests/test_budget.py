"""The whole-job time budget: what the search gets and what may run after it (pure)."""

from __future__ import annotations

import pytest
from fixtures_worker import FakeClock

from automl_service.engines.local.budget import (
    MIN_RESERVE_SECONDS,
    MIN_SEARCH_SECONDS,
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
