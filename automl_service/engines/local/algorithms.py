"""Azure AutoML algorithm names mapped to FLAML learners and local baselines (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ...errors import PermanentError
from ...metrics import Task

#: Azure name -> FLAML learner, per task.
FLAML_LEARNERS: Final[dict[Task, dict[str, str]]] = {
    Task.CLASSIFICATION: {
        "LightGBM": "lgbm",
        "RandomForest": "rf",
        "ExtremeRandomTrees": "extra_tree",
        "LogisticRegression": "lrl1",
        "KNN": "kneighbor",
        "SGD": "sgd",
        "GradientBoosting": "histgb",
        "XGBoostClassifier": "xgboost",
    },
    Task.REGRESSION: {
        "LightGBM": "lgbm",
        "RandomForest": "rf",
        "ExtremeRandomTrees": "extra_tree",
        "ElasticNet": "enet",
        "LassoLars": "lassolars",
        "KNN": "kneighbor",
        "SGD": "sgd",
        "GradientBoosting": "histgb",
        "XGBoostRegressor": "xgboost",
    },
    Task.FORECASTING: {
        "LightGBM": "lgbm",
        "RandomForest": "rf",
        "ExtremeRandomTrees": "extra_tree",
        "LassoLars": "lassolars",
        "Arima": "arima",
        "Arimax": "sarimax",
        "XGBoostRegressor": "xgboost",
    },
}

#: Forecasting baselines the trainer runs itself (statsmodels / plain numpy).
BASELINES: Final = ("Naive", "SeasonalNaive", "Average", "ExponentialSmoothing")

#: Learners used when the request names none (small, fast, no extra packages).
DEFAULT_LEARNERS: Final[dict[Task, tuple[str, ...]]] = {
    Task.CLASSIFICATION: ("lgbm", "rf", "extra_tree", "lrl1"),
    Task.REGRESSION: ("lgbm", "rf", "extra_tree", "enet"),
    Task.FORECASTING: ("lgbm", "rf", "extra_tree", "arima"),
}


@dataclass(frozen=True)
class Plan:
    """What the search may use: FLAML learners and (forecasting) baselines."""

    learners: tuple[str, ...]
    baselines: tuple[str, ...]


def known_names(task: Task) -> list[str]:
    names = list(FLAML_LEARNERS[task])
    if task is Task.FORECASTING:
        names += list(BASELINES)
    return sorted(names)


def azure_name(task: Task, learner: str) -> str:
    """The Azure-style name of a FLAML learner (the learner itself when unmapped)."""
    for name, value in FLAML_LEARNERS[task].items():
        if value == learner:
            return name
    return learner


def plan(task: Task, allowed: Sequence[str] | None, blocked: Sequence[str] | None) -> Plan:
    """The learners and baselines for a request; an unknown name is a PermanentError."""
    known = known_names(task)
    for name in [*(allowed or ()), *(blocked or ())]:
        if name not in known:
            raise PermanentError(
                f"unknown {task.value} algorithm {name!r}; known: {', '.join(known)}"
            )
    mapping = FLAML_LEARNERS[task]
    baselines = BASELINES if task is Task.FORECASTING else ()
    if allowed:
        learners = tuple(mapping[n] for n in allowed if n in mapping)
        chosen_baselines = tuple(b for b in baselines if b in allowed)
    else:
        learners = DEFAULT_LEARNERS[task]
        chosen_baselines = tuple(baselines)
    block = set(blocked or ())
    learners = tuple(dict.fromkeys(lr for lr in learners if azure_name(task, lr) not in block))
    chosen_baselines = tuple(b for b in chosen_baselines if b not in block)
    if not learners and not chosen_baselines:
        raise PermanentError("no algorithm left to try after allowed/blocked lists")
    return Plan(learners, chosen_baselines)
