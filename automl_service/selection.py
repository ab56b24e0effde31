"""Pure best-run selection: plain run records in, the winner and the reasons out."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import NoEligibleRun
from .metrics import Goal
from .runs import RunRecord, RunStatus
from .tags import TEST_METRIC_PREFIX


@dataclass(frozen=True)
class Rejection:
    run_id: str
    reason: str


@dataclass(frozen=True)
class Selection:
    """The chosen run, how it compares with the others, and why the rest lost."""

    metric: str
    goal: Goal
    winner: RunRecord
    leaderboard: tuple[RunRecord, ...]  # eligible runs, best first; winner is [0]
    rejected: tuple[Rejection, ...]

    @property
    def value(self) -> float:
        return float(self.winner.metrics[self.metric])

    @property
    def test_metrics(self) -> dict[str, float]:
        """The winner's metrics on the request's test rows (``test_<name>`` runs' metrics,
        by their names), empty when it had none."""
        return {
            name.removeprefix(TEST_METRIC_PREFIX): value
            for name, value in self.winner.metrics.items()
            if name.startswith(TEST_METRIC_PREFIX)
        }

    def explain(self) -> str:
        """A sentence a person reads in the result: why this run won."""
        runners_up = len(self.leaderboard) - 1
        text = (
            f"run {self.winner.run_id} ({self.winner.algorithm or 'unknown algorithm'}) has the "
            f"{'highest' if self.goal is Goal.MAXIMIZE else 'lowest'} {self.metric} "
            f"= {self.value:.6g} among {len(self.leaderboard)} eligible runs"
        )
        if runners_up:
            second = self.leaderboard[1]
            text += (
                f"; runner-up {second.run_id} ({second.algorithm or 'unknown'}) "
                f"= {second.metrics[self.metric]:.6g}"
            )
        if self.rejected:
            text += f"; {len(self.rejected)} runs were not eligible"
        return text


def select_best(
    runs: Iterable[RunRecord],
    metric: str,
    goal: Goal,
    *,
    require_status: str = RunStatus.FINISHED,
) -> Selection:
    """Rank ``runs`` by ``metric`` towards ``goal`` and return the best.

    Runs that did not finish, lack the metric, or carry NaN/inf are not eligible; each
    gets a reason. Ties go to the run that finished first, then to the smaller run id,
    so the result never depends on the order the runs came in.
    """
    eligible: list[RunRecord] = []
    rejected: list[Rejection] = []
    for run in runs:
        reason = ineligible(run, metric, require_status)
        if reason:
            rejected.append(Rejection(run.run_id, reason))
        else:
            eligible.append(run)
    if not eligible:
        detail = "; ".join(f"{r.run_id}: {r.reason}" for r in rejected[:5]) or "no child runs"
        raise NoEligibleRun(f"no run has a usable {metric!r}: {detail}")
    sign = -1.0 if goal is Goal.MAXIMIZE else 1.0

    def key(run: RunRecord) -> tuple[float, float, str]:
        finished = run.end_time_ms if run.end_time_ms is not None else math.inf
        return (sign * float(run.metrics[metric]), finished, run.run_id)

    ranked = tuple(sorted(eligible, key=key))
    rejected.sort(key=lambda r: r.run_id)
    return Selection(metric, goal, ranked[0], ranked, tuple(rejected))


def ineligible(run: RunRecord, metric: str, require_status: str = RunStatus.FINISHED) -> str | None:
    """Why ``run`` cannot compete on ``metric``, or None when it can."""
    if run.status != require_status:
        return f"status is {run.status}, not {require_status}"
    if metric not in run.metrics:
        return f"has no {metric}"
    value = run.metrics[metric]
    if not isinstance(value, int | float) or not math.isfinite(value):
        return f"{metric} is {value}"
    return None
