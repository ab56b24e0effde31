"""Pure best-run selection and the request-level metric rules it relies on."""

from __future__ import annotations

import itertools
import math

import pytest

from automl_service.errors import InvalidRequest, NoEligibleRun
from automl_service.metrics import METRIC_GOALS, Goal, Task, resolve_goal
from automl_service.request import parse_request
from automl_service.runs import RunRecord, RunStatus
from automl_service.selection import select_best

ALL_METRICS = sorted(
    {(metric, goal) for table in METRIC_GOALS.values() for metric, goal in table.items()}
)


def run(run_id: str, value: float | None, *, status: str = "FINISHED", metric: str = "m",
        end: int | None = None, algorithm: str | None = None) -> RunRecord:  # fmt: skip
    metrics = {} if value is None else {metric: value}
    tags = {"algorithm": algorithm} if algorithm else {}
    return RunRecord(run_id, RunStatus(status), metrics, tags, end_time_ms=end)


@pytest.mark.parametrize(("metric", "goal"), ALL_METRICS)
def test_every_known_metric_picks_its_direction(metric: str, goal: Goal) -> None:
    """For every metric in the table, the winner is the highest when maximized and the
    lowest when minimized, and the leaderboard is ordered best first."""
    runs = [run(f"r{i}", v, metric=metric) for i, v in enumerate([0.3, 0.9, 0.1, 0.5])]
    chosen = select_best(runs, metric, resolve_goal(metric, None))
    expected = ["r1", "r3", "r0", "r2"] if goal is Goal.MAXIMIZE else ["r2", "r0", "r3", "r1"]
    assert [r.run_id for r in chosen.leaderboard] == expected
    assert chosen.winner.run_id == expected[0]
    assert chosen.goal is goal


def test_both_directions_are_covered() -> None:
    """The metric table holds metrics of both directions, so both are exercised above."""
    assert {goal for _, goal in ALL_METRICS} == {Goal.MAXIMIZE, Goal.MINIMIZE}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("goal", list(Goal))
def test_nan_and_inf_are_not_eligible(bad: float, goal: Goal) -> None:
    """NaN and infinities never win, whichever the direction, and each gets a reason."""
    chosen = select_best([run("a", bad), run("b", 0.5)], "m", goal)
    assert chosen.winner.run_id == "b"
    assert [(r.run_id, r.reason) for r in chosen.rejected] == [("a", f"m is {bad}")]


def test_unfinished_failed_and_missing_metric_are_rejected() -> None:
    """Runs that failed, still run, or lack the metric are rejected with their reasons."""
    runs = [
        run("failed", 0.99, status="FAILED"),
        run("running", 0.98, status="RUNNING"),
        run("killed", 0.97, status="KILLED"),
        run("nometric", None),
        run("ok", 0.1),
    ]
    chosen = select_best(runs, "m", Goal.MAXIMIZE)
    assert chosen.winner.run_id == "ok"
    reasons = {r.run_id: r.reason for r in chosen.rejected}
    assert reasons == {
        "failed": "status is FAILED, not FINISHED",
        "running": "status is RUNNING, not FINISHED",
        "killed": "status is KILLED, not FINISHED",
        "nometric": "has no m",
    }
    assert "4 runs were not eligible" in chosen.explain()


def test_no_eligible_run_raises() -> None:
    """With no usable run (or no runs at all) selection raises NoEligibleRun."""
    with pytest.raises(NoEligibleRun, match="failed"):
        select_best([run("failed", 0.9, status="FAILED")], "m", Goal.MAXIMIZE)
    with pytest.raises(NoEligibleRun, match="no child runs"):
        select_best([], "m", Goal.MAXIMIZE)


def test_ties_are_broken_the_same_way_for_every_input_order() -> None:
    """Among equal values the earliest finisher wins, then the smaller run id, whatever
    the order the runs came in."""
    runs = [
        run("c", 0.8, end=200),
        run("b", 0.8, end=100),
        run("a", 0.8, end=100),
        run("d", 0.8),  # no end time: after every finished one
        run("e", 0.7, end=1),
    ]
    orders = {
        tuple(r.run_id for r in select_best(list(p), "m", Goal.MAXIMIZE).leaderboard)
        for p in itertools.permutations(runs)
    }
    assert orders == {("a", "b", "c", "d", "e")}


def test_explicit_goal_for_an_unknown_metric() -> None:
    """An unknown metric is ranked by the goal given; without one it is an error."""
    runs = [run("a", 1.0, metric="my_loss"), run("b", 2.0, metric="my_loss")]
    assert select_best(runs, "my_loss", resolve_goal("my_loss", Goal.MINIMIZE)).winner.run_id == "a"
    assert select_best(runs, "my_loss", resolve_goal("my_loss", Goal.MAXIMIZE)).winner.run_id == "b"
    with pytest.raises(ValueError, match="unknown metric 'my_loss'"):
        resolve_goal("my_loss", None)


def test_contradicting_goal_for_a_known_metric_is_an_error() -> None:
    """A known metric's direction cannot be overridden."""
    with pytest.raises(ValueError, match="always minimized"):
        resolve_goal("normalized_root_mean_squared_error", Goal.MAXIMIZE)


def test_explain_names_winner_and_runner_up() -> None:
    """The explanation names the winner, its algorithm, the value and the runner-up."""
    chosen = select_best(
        [run("a", 0.9, algorithm="LightGBM"), run("b", 0.8, algorithm="XGBoost")],
        "m",
        Goal.MAXIMIZE,
    )
    text = chosen.explain()
    assert "run a (LightGBM) has the highest m = 0.9 among 2 eligible runs" in text
    assert "runner-up b (XGBoost) = 0.8" in text


BASE = '"task": "{task}", "training_data": "d.csv", "target_column_name": "y"'


def request_text(task: str, extra: str) -> str:
    return "{" + BASE.format(task=task) + (", " + extra if extra else "") + "}"


def test_primary_metric_must_belong_to_the_task() -> None:
    """A regression metric as a classification primary metric is rejected, naming both."""
    with pytest.raises(InvalidRequest, match="'r2_score' is not a classification metric"):
        parse_request(request_text("classification", '"primary_metric": "r2_score"'))


def test_selection_metric_of_another_task_needs_a_goal() -> None:
    """A selection metric unknown for the task, without a goal, is rejected; with a goal
    it is accepted and used."""
    with pytest.raises(InvalidRequest, match="unknown metric 'accuracy'"):
        parse_request(request_text("regression", '"selection": {"metric": "accuracy"}'))
    request = parse_request(
        request_text("regression", '"selection": {"metric": "accuracy", "goal": "maximize"}')
    )
    assert (request.selection_metric, request.selection_goal) == ("accuracy", Goal.MAXIMIZE)


def test_unknown_selection_metric_without_goal_is_rejected() -> None:
    """An invented selection metric with no goal is an invalid request, never a guess."""
    with pytest.raises(InvalidRequest, match="give its goal"):
        parse_request(request_text("classification", '"selection": {"metric": "my_score"}'))


def test_default_metric_goals_per_task() -> None:
    """Without a primary metric, each task selects by its default towards the right goal."""
    for task, expected in [
        (Task.CLASSIFICATION, ("accuracy", Goal.MAXIMIZE)),
        (Task.REGRESSION, ("normalized_root_mean_squared_error", Goal.MINIMIZE)),
    ]:
        request = parse_request(request_text(task.value, ""))
        assert (request.selection_metric, request.selection_goal) == expected
