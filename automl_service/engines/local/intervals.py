"""Forecast quantiles from backtest residuals (split conformal, per horizon step; pure).

Each candidate is scored on rolling-origin windows; its errors there (actual less
forecast) at each step ahead are a sample of the errors it makes at that step. The
forecast's ``q`` quantile at step ``h`` is the point forecast plus the ``q`` quantile of
the errors seen at step ``h``, or of all steps' errors when fewer than ``MIN_PER_STEP``
were seen at that step (a few windows of one series). Several series pool their errors
step by step. The bands widen where the model erred more, and are ordered as the
quantiles are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .predictions import Fold

#: Errors needed at one step to take its own quantiles rather than all steps'.
MIN_PER_STEP = 10
#: The point forecast's column when quantiles come beside it.
FORECAST_COLUMN = "forecast"


def quantile_column(q: float) -> str:
    return f"quantile_{q:g}"


@dataclass(frozen=True)
class Intervals:
    """Offsets from the point forecast: one row per step ahead, one column per quantile."""

    quantiles: tuple[float, ...]
    offsets: np.ndarray[Any, Any]

    def around(self, point: np.ndarray[Any, Any], steps: np.ndarray[Any, Any]) -> pd.DataFrame:
        """``forecast`` and one ``quantile_<q>`` column per quantile, for forecasts
        ``point`` at ``steps`` ahead (steps past the last seen take its offsets)."""
        rows = self.offsets[np.minimum(np.asarray(steps), len(self.offsets)) - 1]
        frame = pd.DataFrame({FORECAST_COLUMN: np.asarray(point, dtype=float)})
        for i, q in enumerate(self.quantiles):
            frame[quantile_column(q)] = frame[FORECAST_COLUMN].to_numpy() + rows[:, i]
        return frame


def conformal(
    folds: Sequence[Fold], lengths: Sequence[int], quantiles: Sequence[float]
) -> Intervals:
    """Intervals from the backtest ``folds`` (one per window, its series' forecasts one
    after another, ``lengths[i]`` steps each)."""
    qs = tuple(sorted(quantiles))
    steps = max(lengths)
    by_step: list[list[float]] = [[] for _ in range(steps)]
    for fold, length in zip(folds, lengths, strict=True):
        errors = np.asarray(fold.y_true, dtype=float) - np.asarray(fold.y_pred, dtype=float)
        for position, error in enumerate(errors):
            if np.isfinite(error):
                by_step[position % length].append(float(error))
    pooled = [e for step in by_step for e in step]
    if not pooled:
        raise ValueError("no backtest errors to take quantiles from")
    offsets = np.array(
        [np.quantile(step if len(step) >= MIN_PER_STEP else pooled, qs) for step in by_step]
    )
    return Intervals(qs, offsets.reshape(steps, len(qs)))


def with_intervals(
    model: Any, quantiles: Sequence[float] | None, folds: Sequence[Fold], lengths: Sequence[int]
) -> Any:
    """``model`` given the intervals of its backtest ``folds`` when ``quantiles`` are
    asked for (a model whose folds hold no finite error is left without)."""
    if quantiles:
        try:
            model.intervals = conformal(folds, lengths, quantiles)
        except ValueError:
            model.intervals = None
    return model
