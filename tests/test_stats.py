"""Worker counters and step timings as the health server reads them."""

from __future__ import annotations

from automl_service.stats import STEP_BUCKETS, WorkerStats


def test_step_buckets_are_cumulative_and_bounds_inclusive() -> None:
    """A duration equal to a bound counts under it; counts never drop across bounds; one
    over the largest bound only shows in the total count."""
    stats = WorkerStats()
    for seconds in (0.05, 0.2, 1.0, 1e6):
        stats.time_step("check", seconds)
    snapshot = stats.snapshot()
    cumulative = dict(zip(STEP_BUCKETS, snapshot["step_buckets"]["check"], strict=True))  # type: ignore[index]
    assert cumulative[0.05] == 1 and cumulative[0.25] == 2 and cumulative[1.0] == 3
    assert cumulative[STEP_BUCKETS[-1]] == 3
    assert snapshot["steps"]["check"][0] == 4  # type: ignore[index]
