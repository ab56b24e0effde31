"""The forecasting VotingEnsemble: a weighted average of the best candidates, its weights
chosen on their backtest forecasts (pure but for logging the child run).

Every forecasting candidate is scored on the same rolling-origin windows, and its forecasts
of each window are kept (``TrialLog.top``: each algorithm's best, up to five). The weights
come from greedy ensemble selection with replacement (``ensemble.choose_weights``, Caruana
et al., 2004) with the loss the selection uses: the mean over windows of the primary
metric. Choosing weights trains nothing.

The ensemble's own forecasts of a window are blended with weights chosen on the **other**
windows (with a single window, on that window), so its score is not flattered by weights
fitted to the very points it is scored on. It is logged as a child run, with those
forecasts' metrics and quantiles from their errors, only when it beats the best single
candidate's mean; the registered ensemble uses the weights chosen on every window.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...logs import get_logger
from ...metrics import Task, as_loss
from ...request import AutoMLRequest
from ...runs import RunRecord
from .backtest import aggregate
from .budget import Budget
from .ensemble import ALGORITHM, blend, choose_weights, compatible, ensembles_wanted
from .intervals import with_intervals
from .predictions import Backtest, Fold
from .trials import TrialLog

#: A candidate's forecasts of the backtest windows, latest first.
Windows = tuple[Fold, ...]
#: A window's loss (lower is better).
Score = Callable[[Fold], float]
#: The registered ensemble of the members' models and their weights.
Build = Callable[[list[Any], list[float]], Any]


@dataclass(frozen=True)
class Plan:
    """A kept ensemble: how often each member was picked on every window, and the
    ensemble's own forecasts of each window (weights chosen on the others)."""

    counts: list[int]
    folds: list[Fold]


def mean_loss(windows: Sequence[Fold], score: Score) -> float:
    return float(np.mean([score(f) for f in windows]))


def _pooled(windows: Sequence[Fold]) -> Fold:
    return Fold(
        np.concatenate([f.y_true for f in windows]), np.concatenate([f.y_pred for f in windows])
    )


def _split(fold: Fold, sizes: Sequence[int]) -> list[Fold]:
    bounds = np.cumsum([0, *sizes])
    return [Fold(fold.y_true[a:b], fold.y_pred[a:b]) for a, b in itertools.pairwise(bounds)]


def weights_on(
    members: Sequence[Windows], indices: Sequence[int], score: Score
) -> list[int] | None:
    """Greedy picks on the windows ``indices``, by the mean of their losses; None when no
    mix of two or more beats the best single member there."""
    chosen = [[m[i] for i in indices] for m in members]
    sizes = [len(f.y_true) for f in chosen[0]]

    def loss(fold: Fold) -> float:
        return mean_loss(_split(fold, sizes), score)

    return choose_weights([_pooled(c) for c in chosen], loss)


def _best_single(members: Sequence[Windows], indices: Sequence[int], score: Score) -> list[int]:
    losses = [mean_loss([m[i] for i in indices], score) for m in members]
    counts = [0] * len(members)
    counts[int(np.argmin(losses))] = 1
    return counts


def _blend_window(members: Sequence[Windows], index: int, counts: Sequence[int]) -> Fold:
    picked = [(m[index], c) for m, c in zip(members, counts, strict=True) if c]
    return blend([f for f, _ in picked], [c for _, c in picked])


def plan_ensemble(members: Sequence[Windows], score: Score) -> Plan | None:
    """The ensemble of ``members`` (each one's forecasts of the same windows) when it
    beats the best single member on the mean window loss; else None."""
    if len(members) < 2:
        return None
    n = len(members[0])
    if any(len(m) != n for m in members) or not all(
        compatible([m[i] for m in members]) for i in range(n)
    ):
        return None
    counts = weights_on(members, range(n), score)
    if counts is None:
        return None
    folds = []
    for index in range(n):
        others = [j for j in range(n) if j != index] or [index]
        held_out = weights_on(members, others, score) or _best_single(members, others, score)
        folds.append(_blend_window(members, index, held_out))
    if mean_loss(folds, score) >= min(mean_loss(m, score) for m in members):
        return None
    return Plan(counts, folds)


def add_forecast_ensemble(
    log: TrialLog, lengths: Sequence[int], build: Build, quantiles: Sequence[float] | None
) -> RunRecord | None:
    """Log a VotingEnsemble child run of ``log.top`` when it beats the best of them across
    the windows (``lengths``: each window's steps); returns its run, or None, the reason
    in the trainer log."""
    say = get_logger("automl_service.trainer").info
    started = time.time()
    pool = [c for c in log.top if isinstance(c.predictions, Backtest)]
    if len(pool) < 2:
        say("search.ensemble_skipped", reason=f"{len(pool)} candidate(s) to blend")
        return None
    objective = log.objectives[0]

    def score(fold: Fold) -> float:
        value = fold.metrics(Task.FORECASTING, (objective.metric,)).get(objective.metric)
        return as_loss(math.nan if value is None else value, objective.goal)

    plan = plan_ensemble([tuple(c.predictions.folds) for c in pool], score)
    if plan is None:
        say("search.ensemble_skipped", reason="no blend beats the best single model")
        return None
    chosen = [(c, n) for c, n in zip(pool, plan.counts, strict=True) if n]
    weights = [float(n) for _, n in chosen]

    def model() -> Any:
        built = build([c.model for c, _ in chosen], weights)
        return with_intervals(built, quantiles, plan.folds, list(lengths))

    params = {
        "ensembled_iterations": [c.record.run_id for c, _ in chosen],
        "ensembled_algorithms": [c.record.algorithm for c, _ in chosen],
        "ensemble_weights": [round(w / sum(weights), 4) for w in weights],
        "ensemble_scored": "weights chosen on the other windows",
        "backtest_windows": len(plan.folds),
    }
    metrics = aggregate([f.metrics(Task.FORECASTING) for f in plan.folds])
    # Every candidate's windows hold the same rows in the same order: any one's times do.
    kept = next((c.predictions for c in pool if c.predictions.times), Backtest([]))
    predictions = Backtest(list(plan.folds), list(kept.times), list(kept.series))
    return log.log(ALGORITHM, params, metrics, model, predictions=predictions, started_at=started)


def ensemble_within(
    request: AutoMLRequest,
    log: TrialLog,
    lengths: Sequence[int],
    build: Build,
    budget: Budget | None,
) -> RunRecord | None:
    """``add_forecast_ensemble`` when the request wants a VotingEnsemble and the time
    limit leaves time for it (else None, the reason in the trainer log)."""
    assert request.forecasting is not None
    if not ensembles_wanted(request):
        return None
    if budget is not None and budget.left() <= 0:
        get_logger("automl_service.trainer").info(
            "search.ensemble_skipped", reason="the time limit was reached"
        )
        return None
    return add_forecast_ensemble(log, lengths, build, request.forecasting.forecast_quantiles)
