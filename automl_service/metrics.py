"""Canonical metric names (Azure AutoML's), their tasks and their directions.

The same table serves request validation, best-run selection and the local engine, so a
request written for one backend means the same thing on the other.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Final


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    FORECASTING = "forecasting"


class Goal(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


CLASSIFICATION_PRIMARY: Final = (
    "accuracy",
    "AUC_weighted",
    "average_precision_score_weighted",
    "norm_macro_recall",
    "precision_score_weighted",
)
REGRESSION_PRIMARY: Final = (
    "spearman_correlation",
    "r2_score",
    "normalized_root_mean_squared_error",
    "normalized_mean_absolute_error",
)

#: Primary metrics Azure AutoML accepts per task.
PRIMARY_METRICS: Final[dict[Task, tuple[str, ...]]] = {
    Task.CLASSIFICATION: CLASSIFICATION_PRIMARY,
    Task.REGRESSION: REGRESSION_PRIMARY,
    Task.FORECASTING: REGRESSION_PRIMARY,
}

_CLASSIFICATION_GOALS: Final = {
    "accuracy": Goal.MAXIMIZE,
    "AUC_weighted": Goal.MAXIMIZE,
    "AUC_macro": Goal.MAXIMIZE,
    "AUC_micro": Goal.MAXIMIZE,
    "average_precision_score_weighted": Goal.MAXIMIZE,
    "average_precision_score_macro": Goal.MAXIMIZE,
    "norm_macro_recall": Goal.MAXIMIZE,
    "precision_score_weighted": Goal.MAXIMIZE,
    "precision_score_macro": Goal.MAXIMIZE,
    "recall_score_weighted": Goal.MAXIMIZE,
    "recall_score_macro": Goal.MAXIMIZE,
    "f1_score_weighted": Goal.MAXIMIZE,
    "f1_score_macro": Goal.MAXIMIZE,
    "balanced_accuracy": Goal.MAXIMIZE,
    "matthews_correlation": Goal.MAXIMIZE,
    "log_loss": Goal.MINIMIZE,
}
_REGRESSION_GOALS: Final = {
    "spearman_correlation": Goal.MAXIMIZE,
    "r2_score": Goal.MAXIMIZE,
    "explained_variance": Goal.MAXIMIZE,
    "normalized_root_mean_squared_error": Goal.MINIMIZE,
    "normalized_mean_absolute_error": Goal.MINIMIZE,
    "normalized_median_absolute_error": Goal.MINIMIZE,
    "root_mean_squared_error": Goal.MINIMIZE,
    "mean_absolute_error": Goal.MINIMIZE,
    "median_absolute_error": Goal.MINIMIZE,
    "mean_absolute_percentage_error": Goal.MINIMIZE,
}

#: Every metric name the service knows, per task, with its direction.
METRIC_GOALS: Final[dict[Task, dict[str, Goal]]] = {
    Task.CLASSIFICATION: _CLASSIFICATION_GOALS,
    Task.REGRESSION: _REGRESSION_GOALS,
    Task.FORECASTING: _REGRESSION_GOALS,
}


def goal_of(metric: str, task: Task | None = None) -> Goal | None:
    """The direction of a known metric (for ``task`` when given), or None if unknown."""
    tables = [METRIC_GOALS[task]] if task else list(METRIC_GOALS.values())
    for table in tables:
        if metric in table:
            return table[metric]
    return None


def as_loss(value: float, goal: Goal | None) -> float:
    """``value`` of a metric with direction ``goal`` as a loss (lower is better): negated
    when maximised; a missing or non-finite value is the worst loss, infinity."""
    if not math.isfinite(value):
        return math.inf
    return -value if goal is Goal.MAXIMIZE else value


def resolve_goal(metric: str, goal: Goal | None, task: Task | None = None) -> Goal:
    """The goal to optimise ``metric`` towards.

    A known metric takes its goal from the table (an explicit goal that contradicts the
    table is an error); an unknown metric needs an explicit goal: never a guess.
    """
    known = goal_of(metric, task)
    if known is None:
        if goal is None:
            raise ValueError(
                f"unknown metric {metric!r}: give its goal ('maximize' or 'minimize') "
                "explicitly, or use one of " + ", ".join(sorted(_known_names(task)))
            )
        return goal
    if goal is not None and goal != known:
        raise ValueError(f"metric {metric!r} is always {known.value}d, not {goal.value}d")
    return known


def _known_names(task: Task | None) -> set[str]:
    if task:
        return set(METRIC_GOALS[task])
    return {name for table in METRIC_GOALS.values() for name in table}
