"""A trial's predictions on its validation rows, the unit metrics and ensembles work on;
a forecaster's on its backtest windows; and the rows a job's final models never saw."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ...metrics import Task
from .evaluate import compute_metrics


@dataclass(frozen=True)
class Fold:
    """A trial's predictions on one validation fold (or the holdout)."""

    y_true: np.ndarray[Any, Any]
    y_pred: np.ndarray[Any, Any]
    proba: np.ndarray[Any, Any] | None = None
    classes: list[Any] | None = None

    def metrics(self, task: Task, names: tuple[str, ...] | None = None) -> dict[str, float]:
        """The canonical metrics of these predictions (or only ``names``)."""
        return compute_metrics(task, self.y_true, self.y_pred, self.proba, self.classes, names)

    @staticmethod
    def pool(folds: list[Fold]) -> Fold | None:
        """All folds as one, or None when their class columns differ (a fold lacked a
        class): then the folds' metrics are averaged instead."""
        first = folds[0]
        if any(f.classes != first.classes or (f.proba is None) != (first.proba is None)
               for f in folds):  # fmt: skip
            return None
        return Fold(
            np.concatenate([f.y_true for f in folds]),
            np.concatenate([f.y_pred for f in folds]),
            None
            if first.proba is None
            else np.vstack([f.proba for f in folds if f.proba is not None]),
            first.classes,
        )


@dataclass(frozen=True)
class Backtest:
    """A forecaster's predictions on each backtest window, latest first, the times of
    each window's rows and, for many series, the series of each (``panel.window_rows``)."""

    folds: list[Fold]
    times: list[np.ndarray[Any, Any]] = field(default_factory=list)
    series: list[np.ndarray[Any, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class HeldOut:
    """Rows to show a job's winner on: ``kind`` ``test`` (the request's test rows) or
    ``validation`` (a validation table, not refitted on) the winner never saw, or
    ``training`` (every training row, when none were held out from the final fit)."""

    X: pd.DataFrame
    y: pd.Series
    kind: str

    @property
    def fresh(self) -> bool:
        """Whether the final model never saw these rows."""
        return self.kind != "training"
