"""Simple forecasting baselines: Naive, SeasonalNaive, Average, ExponentialSmoothing.

Each fits on a training series and forecasts ``steps`` points ahead. Pure (numpy and
statsmodels); a baseline that cannot fit the series raises ValueError.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

_SEASON_BY_FREQ = {"M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4, "QE": 4, "W": 52, "D": 7}


def season_length(freq: str | None, requested: int | str = "auto") -> int:
    """The season length: the request's number, else a guess from the frequency (1 = none)."""
    if isinstance(requested, int):
        return max(requested, 1)
    if not freq:
        return 1
    base = freq.split("-")[0].lstrip("0123456789")
    if base in ("h", "H"):
        return 24
    return _SEASON_BY_FREQ.get(base, 1)


def forecast(
    kind: str, history: np.ndarray[Any, Any], steps: int, season: int
) -> np.ndarray[Any, Any]:
    """``steps`` forecasts after ``history`` by the baseline ``kind``."""
    y = np.asarray(history, dtype=float)
    if y.size == 0 or steps < 1:
        raise ValueError("empty history or no steps")
    if kind == "Naive":
        return np.full(steps, y[-1])
    if kind == "Average":
        return np.full(steps, float(np.mean(y)))
    if kind == "SeasonalNaive":
        if season <= 1 or y.size < season:
            raise ValueError(f"SeasonalNaive needs a season > 1 and {season} points")
        last = y[-season:]
        return np.array([last[i % season] for i in range(steps)])
    if kind == "ExponentialSmoothing":
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        seasonal = "add" if season > 1 and y.size >= 2 * season else None
        model = ExponentialSmoothing(
            y,
            trend="add",
            seasonal=seasonal,
            seasonal_periods=season if seasonal else None,
            initialization_method="estimated",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = model.fit()
        return np.asarray(fitted.forecast(steps), dtype=float)
    raise ValueError(f"unknown baseline {kind!r}")
