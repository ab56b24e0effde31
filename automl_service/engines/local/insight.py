"""What a model does on held-out rows, in numbers (pure: arrays and tables in, records out).

Classification: the confusion matrix and, for two classes, the ROC and precision-recall
curves of the positive class (the second in sorted order). Regression: predicted against
actual values and their residuals. Forecasting: each backtest window's forecast beside
its actual values, with quantile bands. Any model: permutation feature importance, how
much a metric worsens when one column's values are shuffled among the rows
(``sklearn.inspection.permutation_importance``). Drawing is ``insight_charts``; running
it at the end of a job and storing it is ``model_insight``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

#: Points of a curve or scatter kept for drawing and storing; more are thinned evenly.
MAX_POINTS = 2000


@dataclass(frozen=True)
class Confusion:
    """Counts of rows by true class (rows) and predicted class (columns)."""

    classes: list[str]
    counts: list[list[int]]


@dataclass(frozen=True)
class Curve:
    """A curve's points (``x`` ascending for ROC, recall for precision-recall) and the
    area summarising it (ROC AUC, average precision)."""

    x: list[float]
    y: list[float]
    area: float


@dataclass(frozen=True)
class Importance:
    """One column's permutation importance: the mean loss of the metric when its values
    are shuffled (positive: the model relies on it), and the spread over repeats."""

    feature: str
    mean: float
    std: float


@dataclass(frozen=True)
class Residuals:
    """Actual and predicted values of (at most ``MAX_POINTS``) rows, and summary numbers."""

    actual: list[float]
    predicted: list[float]
    rows: int
    mean_error: float
    mean_absolute_error: float


@dataclass(frozen=True)
class WindowForecast:
    """One backtest window: its times, actual values, forecast, and quantile bands
    (quantile to values) when the model has them."""

    index: int
    times: list[str]
    actual: list[float]
    forecast: list[float]
    quantiles: dict[float, list[float]] = field(default_factory=dict)


def confusion(y_true: Any, y_pred: Any, classes: Sequence[Any]) -> Confusion:
    """The confusion matrix over ``classes`` (in that order), labels compared as text."""
    names = [str(c) for c in classes]
    matrix = skm.confusion_matrix(
        np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str), labels=names
    )
    return Confusion(names, [[int(v) for v in row] for row in matrix])


def roc(y_true: Any, score: Any, positive: Any) -> Curve | None:
    """The ROC curve of ``positive`` (false against true positive rate) from its
    probability ``score``; None when the rows hold one class only."""
    positives = np.asarray(y_true).astype(str) == str(positive)
    if positives.all() or not positives.any():
        return None
    fpr, tpr, _ = skm.roc_curve(positives, np.asarray(score, dtype=float))
    area = float(skm.roc_auc_score(positives, np.asarray(score, dtype=float)))
    keep = thin(len(fpr))
    return Curve(_floats(fpr[keep]), _floats(tpr[keep]), area)


def precision_recall(y_true: Any, score: Any, positive: Any) -> Curve | None:
    """The precision-recall curve of ``positive`` (recall ascending) and its average
    precision; None when the rows hold no positive row."""
    positives = np.asarray(y_true).astype(str) == str(positive)
    if not positives.any():
        return None
    precision, recall, _ = skm.precision_recall_curve(positives, np.asarray(score, dtype=float))
    area = float(skm.average_precision_score(positives, np.asarray(score, dtype=float)))
    order = np.argsort(recall, kind="stable")
    keep = order[thin(len(order))]
    return Curve(_floats(recall[keep]), _floats(precision[keep]), area)


def residuals(y_true: Any, y_pred: Any) -> Residuals:
    """Actual against predicted values (thinned to ``MAX_POINTS`` rows) and the mean
    error (actual less predicted) and mean absolute error of every row."""
    actual = np.asarray(y_true, dtype=float).ravel()
    predicted = np.asarray(y_pred, dtype=float).ravel()
    errors = actual - predicted
    keep = thin(len(actual))
    return Residuals(
        _floats(actual[keep]),
        _floats(predicted[keep]),
        len(actual),
        float(np.mean(errors)) if errors.size else math.nan,
        float(np.mean(np.abs(errors))) if errors.size else math.nan,
    )


def window_forecast(
    index: int,
    times: Any,
    actual: Any,
    forecast: Any,
    bands: pd.DataFrame | None = None,
) -> WindowForecast:
    """One window's record; ``bands`` holds ``quantile_<q>`` columns (``intervals``)."""
    quantiles: dict[float, list[float]] = {}
    if bands is not None:
        for column in bands.columns:
            name = str(column)
            if name.startswith("quantile_"):
                quantiles[float(name.removeprefix("quantile_"))] = _floats(bands[column])
    return WindowForecast(
        index,
        [pd.Timestamp(t).isoformat() for t in times],
        _floats(actual),
        _floats(forecast),
        quantiles,
    )


class _Scored:
    """What ``permutation_importance`` needs of a model: ``fit`` (never called) and
    ``predict``."""

    def __init__(self, predict: Callable[[pd.DataFrame], Any]) -> None:
        self.predict = predict

    def fit(self, X: Any, y: Any) -> _Scored:  # pragma: no cover - never called
        return self


def permutation_ranking(
    predict: Callable[[pd.DataFrame], Any],
    X: pd.DataFrame,
    y: Any,
    loss: Callable[[Any, Any], float],
    *,
    repeats: int = 5,
    seed: int = 0,
) -> list[Importance]:
    """Each column's permutation importance for the model ``predict`` on rows ``X``
    with targets ``y``: how much ``loss(y, predict(X))`` (lower is better) grows when the
    column is shuffled, over ``repeats`` shuffles; most important first (ties by name)."""
    from sklearn.inspection import permutation_importance

    def scorer(model: _Scored, rows: Any, target: Any) -> float:
        return -loss(target, model.predict(rows))

    found = permutation_importance(
        _Scored(predict), X, y, scoring=scorer, n_repeats=repeats, random_state=seed
    )
    ranked = [
        Importance(str(name), _finite(mean), _finite(std))
        for name, mean, std in zip(
            X.columns, found.importances_mean, found.importances_std, strict=True
        )
    ]
    return sorted(ranked, key=lambda i: (-i.mean, i.feature))


def repeats_within(
    seconds_per_call: float, columns: int, seconds_left: float, most: int = 5
) -> int:
    """How many shuffles of each column fit in ``seconds_left`` when one prediction takes
    ``seconds_per_call`` (``columns`` times ``repeats`` predictions), at most ``most``; 0 when not
    even one does."""
    if columns <= 0 or seconds_left <= 0:
        return 0
    cost = max(seconds_per_call, 1e-6) * columns
    return max(0, min(most, int(seconds_left // cost)))


def thin(n: int, limit: int = MAX_POINTS) -> np.ndarray[Any, Any]:
    """Indices of at most ``limit`` of ``n`` items, evenly spread, first and last kept."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def _floats(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float).ravel()]


def _finite(value: Any) -> float:
    number = float(value)
    return number if math.isfinite(number) else 0.0
