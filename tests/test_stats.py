"""Worker counters and step timings as the health server reads them."""

from __future__ import annotations

from fixtures_worker import FakeClock

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


def test_heartbeat_age_reads_the_injected_clock() -> None:
    """The start, each beat and the heartbeat's age all come from the stats' clock."""
    clock = FakeClock()
    stats = WorkerStats(clock=clock)
    assert stats.started_at == stats.heartbeat_at == clock.now
    clock.now += 42.0
    assert stats.heartbeat_age() == 42.0
    stats.beat()
    assert stats.heartbeat_age() == 0.0
    assert stats.snapshot()["heartbeat_at"] == clock.now
