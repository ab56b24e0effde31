"""VotingEnsemble: a weighted average of the best trials, as Azure AutoML's last iteration
(classification and regression).

The weights come from greedy ensemble selection with replacement (Caruana et al., 2004)
on the trials' own validation predictions (pooled out-of-fold under cross-validation, the
holdout otherwise), so choosing them trains nothing. The ensemble is logged as one more
child run, with its canonical metrics computed on the blended validation predictions, and
wins the selection only if it scores better there, like any other trial.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from ...metrics import Task, as_loss
from ...request import AutoMLRequest
from ...runs import RunRecord
from .model import FlamlModel
from .predictions import Fold
from .probabilities import decide, labelled, normalized
from .trials import TrialLog

ALGORITHM = "VotingEnsemble"
#: Trials the ensemble may draw from, and how many picks (with replacement) it makes.
MAX_MEMBERS = 5
ROUNDS = 15


def blend(members: Sequence[Fold], weights: Sequence[float]) -> Fold:
    """The weighted average: of probabilities (then the likeliest class), or of values."""
    w = np.asarray(weights, dtype=float) / float(np.sum(weights))
    first = members[0]
    if first.proba is not None and first.classes is not None:
        proba = sum(wi * np.asarray(m.proba, dtype=float) for wi, m in zip(w, members, strict=True))
        labels = np.asarray(first.classes, dtype=object)[np.argmax(proba, axis=1)]
        y_pred = labels.astype(np.asarray(first.y_pred).dtype, copy=False)
        return Fold(first.y_true, y_pred, np.asarray(proba), first.classes)
    values = sum(wi * np.asarray(m.y_pred, dtype=float) for wi, m in zip(w, members, strict=True))
    return Fold(first.y_true, np.asarray(values, dtype=float))


def compatible(members: Sequence[Fold]) -> bool:
    """Whether the predictions can be blended: same rows, and same class columns."""
    first = members[0]
    return all(
        len(m.y_true) == len(first.y_true)
        and np.array_equal(m.y_true, first.y_true)
        and (m.proba is None) == (first.proba is None)
        and m.classes == first.classes
        for m in members
    )


def choose_weights(
    members: Sequence[Fold], loss: Callable[[Fold], float], rounds: int = ROUNDS
) -> list[int] | None:
    """Greedy selection with replacement: start from the best single member, then
    ``rounds`` times add whichever member gives the lowest ``loss`` (the same one again
    sharpens its weight), and keep the best mix seen. Returns how often each member was
    picked, or None when no mix of two or more beats the best single member."""
    if len(members) < 2 or not compatible(members):
        return None
    singles = [loss(m) for m in members]
    counts = [0] * len(members)
    counts[int(np.argmin(singles))] = 1
    best, best_counts = min(singles), counts.copy()
    for _ in range(rounds):
        trials = []
        for i in range(len(members)):
            tried = counts.copy()
            tried[i] += 1
            trials.append((loss(_weighted(members, tried)), i))
        value, pick = min(trials)
        counts[pick] += 1
        if value < best:
            best, best_counts = value, counts.copy()
    if sum(1 for c in best_counts if c) < 2:
        return None
    return best_counts


def _weighted(members: Sequence[Fold], counts: Sequence[int]) -> Fold:
    chosen = [(m, c) for m, c in zip(members, counts, strict=True) if c]
    return blend([m for m, _ in chosen], [c for _, c in chosen])


class EnsembleModel(PythonModel):
    """The members' predictions averaged with the chosen weights (pyfunc).

    Classification averages the FLAML members' class probabilities and answers the
    likeliest label (or applies ``decision_threshold``) beside the averaged probabilities
    (see ``probabilities``); regression averages the members' predicted values.
    """

    def __init__(self, members: Sequence[Any], weights: Sequence[float], classify: bool):
        self.members = list(members)
        self.weights = [float(w) for w in weights]
        self.classify = classify
        #: Two classes: the positive class's probability from which it is the label.
        self.decision_threshold: float | None = None

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        total = sum(self.weights)
        if self.classify:
            parts = [m.predict_proba(model_input) for m in self.members]
            # Columns are matched by class: a member fitted without some class has none.
            classes = np.unique(np.concatenate([c for _, c in parts]))
            proba = np.zeros((len(parts[0][0]), len(classes)))
            for weight, (part, part_classes) in zip(self.weights, parts, strict=True):
                proba[:, np.searchsorted(classes, part_classes)] += weight / total * part
            first: FlamlModel = self.members[0]
            threshold = getattr(self, "decision_threshold", None)  # older pickles lack it
            labels = first.decode(decide(proba, classes, threshold))
            index = model_input.index if isinstance(model_input, pd.DataFrame) else None
            return labelled(labels, normalized(proba), list(first.decode(classes)), index)
        values = [np.asarray(m.predict(context, model_input), dtype=float) for m in self.members]
        return sum(w / total * v for w, v in zip(self.weights, values, strict=True))


def ensembles_wanted(request: AutoMLRequest) -> bool:
    """Whether the job ends with a VotingEnsemble: when asked for (the default). Forecasts
    get theirs from ``forecast_ensemble``, weighed on the backtest windows."""
    return request.training.enable_vote_ensemble


def add_vote_ensemble(trials: TrialLog, task: Task) -> RunRecord | None:
    """Log a VotingEnsemble child run of ``trials.top`` when a blend of two or more of those
    trials beats the best one on the primary metric; returns its run, or None."""
    if len(trials.top) < 2:
        return None
    started = time.time()
    objective = trials.objectives[0]
    base = trials.top[0].predictions
    pool = [c for c in trials.top if compatible([base, c.predictions])]

    def loss(fold: Fold) -> float:
        value = fold.metrics(task, (objective.metric,)).get(objective.metric, math.nan)
        return as_loss(value, objective.goal)

    counts = choose_weights([c.predictions for c in pool], loss)
    if counts is None:
        return None
    chosen = [(c, n) for c, n in zip(pool, counts, strict=True) if n]
    weights = [n for _, n in chosen]
    blended = blend([c.predictions for c, _ in chosen], weights)
    model = EnsembleModel([c.model for c, _ in chosen], weights, task is Task.CLASSIFICATION)
    params = {
        "ensembled_iterations": [c.record.run_id for c, _ in chosen],
        "ensembled_algorithms": [c.record.algorithm for c, _ in chosen],
        "ensemble_weights": [round(n / sum(weights), 4) for n in weights],
    }
    return trials.log(
        ALGORITHM,
        params,
        blended.metrics(task),
        lambda: model,
        predictions=blended,
        started_at=started,
    )
