"""Canonical metrics (Azure AutoML's names) from true values, predictions and probabilities.

Pure: arrays in, a dict out, no I/O. Only names in ``metrics.METRIC_GOALS`` are returned,
and only finite values: a metric that cannot be computed (one class present, a constant
series) is left out rather than reported as NaN.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from ...metrics import METRIC_GOALS, Task

ArrayLike = Sequence[Any] | np.ndarray[Any, Any] | Any


def classification_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    proba: ArrayLike | None = None,
    labels: Sequence[Any] | None = None,
    names: Collection[str] | None = None,
) -> dict[str, float]:
    """Classification metrics; ``proba`` columns follow ``labels`` (default: sorted y_true).

    Probability metrics (AUC, average precision, log loss) need ``proba``. ``names`` limits
    the work to those metrics (default: all).
    """
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred)
    classes = np.asarray(labels) if labels is not None else np.unique(yt)
    n_classes = max(len(classes), 2)
    out: dict[str, Callable[[], float]] = {
        "accuracy": lambda: skm.accuracy_score(yt, yp),
        "balanced_accuracy": lambda: skm.balanced_accuracy_score(yt, yp),
        "norm_macro_recall": lambda: _norm_macro_recall(yt, yp, classes),
        "matthews_correlation": lambda: skm.matthews_corrcoef(yt, yp),
    }
    for avg in ("weighted", "macro"):
        out[f"precision_score_{avg}"] = _bind(
            skm.precision_score, yt, yp, average=avg, zero_division=0
        )
        out[f"recall_score_{avg}"] = _bind(skm.recall_score, yt, yp, average=avg, zero_division=0)
        out[f"f1_score_{avg}"] = _bind(skm.f1_score, yt, yp, average=avg, zero_division=0)
    if proba is not None:
        p = np.asarray(proba, dtype=float)
        if p.ndim == 1:
            p = np.column_stack([1.0 - p, p])
        onehot = (yt[:, None] == classes[None, : p.shape[1]]).astype(float)
        out["log_loss"] = _bind(skm.log_loss, yt, p, labels=classes)
        if n_classes == 2 and p.shape[1] == 2:
            score = p[:, 1]
            positive = yt == classes[1]
            auc = _bind(skm.roc_auc_score, positive, score)
            ap = _bind(skm.average_precision_score, positive, score)
            # Binary: Azure's weighted/macro/micro averages all equal the positive-class score.
            for avg in ("weighted", "macro", "micro"):
                out[f"AUC_{avg}"] = auc
            for avg in ("weighted", "macro"):
                out[f"average_precision_score_{avg}"] = ap
        else:
            for avg in ("weighted", "macro"):
                out[f"AUC_{avg}"] = _bind(
                    skm.roc_auc_score, yt, p, multi_class="ovr", average=avg, labels=classes
                )
                out[f"average_precision_score_{avg}"] = _bind(
                    skm.average_precision_score, onehot, p, average=avg
                )
            out["AUC_micro"] = _bind(skm.roc_auc_score, onehot, p, average="micro")
    return _finite(out, Task.CLASSIFICATION, names)


def regression_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    task: Task = Task.REGRESSION,
    names: Collection[str] | None = None,
) -> dict[str, float]:
    """Regression / forecasting metrics; normalised ones divide by the range of y_true."""
    yt = np.asarray(y_true, dtype=float).ravel()
    yp = np.asarray(y_pred, dtype=float).ravel()
    spread = float(np.max(yt) - np.min(yt)) if yt.size else 0.0

    def rmse() -> float:
        return math.sqrt(skm.mean_squared_error(yt, yp))

    def mae() -> float:
        return float(skm.mean_absolute_error(yt, yp))

    def medae() -> float:
        return float(skm.median_absolute_error(yt, yp))

    out: dict[str, Callable[[], float]] = {
        "r2_score": lambda: skm.r2_score(yt, yp) if yt.size > 1 else math.nan,
        "explained_variance": lambda: (
            skm.explained_variance_score(yt, yp) if np.ptp(yt) > 0 else math.nan
        ),
        "spearman_correlation": lambda: _spearman(yt, yp),
        "root_mean_squared_error": rmse,
        "mean_absolute_error": mae,
        "median_absolute_error": medae,
        "normalized_root_mean_squared_error": lambda: rmse() / spread if spread else math.nan,
        "normalized_mean_absolute_error": lambda: mae() / spread if spread else math.nan,
        "normalized_median_absolute_error": lambda: medae() / spread if spread else math.nan,
        "mean_absolute_percentage_error": lambda: _mape(yt, yp),
    }
    return _finite(out, task, names)


def compute_metrics(
    task: Task,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    proba: ArrayLike | None = None,
    labels: Sequence[Any] | None = None,
    names: Collection[str] | None = None,
) -> dict[str, float]:
    """The task's canonical metrics (see ``classification_metrics``/``regression_metrics``),
    or only ``names`` among them."""
    if task is Task.CLASSIFICATION:
        return classification_metrics(y_true, y_pred, proba, labels, names)
    return regression_metrics(y_true, y_pred, task, names)


def _norm_macro_recall(yt: np.ndarray[Any, Any], yp: np.ndarray[Any, Any], classes: Any) -> float:
    n = len(classes)
    chance = 0.5 if n <= 2 else 1.0 / n
    recall = float(skm.recall_score(yt, yp, labels=classes, average="macro", zero_division=0))
    return (recall - chance) / (1.0 - chance)


def _spearman(yt: np.ndarray[Any, Any], yp: np.ndarray[Any, Any]) -> float:
    if yt.size < 2 or np.ptp(yt) == 0 or np.ptp(yp) == 0:
        return math.nan
    from scipy.stats import spearmanr

    return float(spearmanr(yt, yp).statistic)


def _mape(yt: np.ndarray[Any, Any], yp: np.ndarray[Any, Any]) -> float:
    # Azure leaves out rows whose true value is zero; a percentage is reported (x100).
    mask = yt != 0
    if not mask.any():
        return math.nan
    return float(np.mean(np.abs((yt[mask] - yp[mask]) / yt[mask])) * 100.0)


def _bind(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], float]:
    return lambda: float(fn(*args, **kwargs))


def _finite(
    candidates: dict[str, Callable[[], float]], task: Task, names: Collection[str] | None = None
) -> dict[str, float]:
    known = METRIC_GOALS[task]
    result: dict[str, float] = {}
    for name, compute in candidates.items():
        if name not in known or (names is not None and name not in names):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = float(compute())
        except (ValueError, ZeroDivisionError, FloatingPointError, IndexError):
            continue
        if math.isfinite(value):
            result[name] = value
    return result
