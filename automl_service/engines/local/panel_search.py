"""Forecasting many series in one table: per-series baselines and one global LightGBM.

Blocking; runs inside the trainer process. Each candidate is one child run: a baseline
fitted on every series, or a LightGBM regressor fitted on all series at once
(``panel.lag_rows``). Both are scored on the same backtest windows (counted from each
series' own end); in each window the canonical metrics are computed on every series'
forecasts **pooled** (one set of rows, as the registered model answers them), and the
run's metrics are the mean over windows, each window's logged as ``<metric>_window_<i>``.
The other FLAML learners are not run on many series.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...errors import PermanentError
from ...metrics import Task
from ...request import AutoMLRequest
from . import baselines
from .backtest import Window, aggregate, window_params
from .intervals import with_intervals
from .panel import Panel, forecast_rows, lag_count, lag_rows, panel_frequency, split_panel
from .panel_forecasters import PanelBaseline, PanelGlobal
from .predictions import Fold
from .table_checks import check_columns
from .trials import TrialLog

SEED = 42
#: The Azure name the global model is logged under, and the FLAML learner that enables it.
GLOBAL_ALGORITHM = "LightGBM"
GLOBAL_LEARNER = "lgbm"


def search_panel(
    request: AutoMLRequest,
    log: TrialLog,
    learners: tuple[str, ...],
    kinds: tuple[str, ...],
    frame: pd.DataFrame,
) -> None:
    """Log the baselines ``kinds`` and (when ``learners`` has LightGBM) the global model
    as child runs. PermanentError for a missing column, a series too short for the
    windows (naming it), an irregular time column, or nothing to run."""

    assert request.forecasting is not None
    fc = request.forecasting
    ids = tuple(fc.time_series_id_column_names)
    time_col, target = fc.time_column_name, request.target_column_name
    check_columns(frame, [*ids, time_col], "series id and time")
    if request.validation.validation_data:
        raise PermanentError(
            "validation_data is not supported locally with several series; "
            "use validation.n_cross_validations (backtest windows)"
        )
    if not kinds and GLOBAL_LEARNER not in learners:
        raise PermanentError(
            "with several series the local backend runs LightGBM (one model over all "
            "series) and the baselines; none of them is allowed"
        )
    panel = split_panel(frame, ids, time_col, target)
    windows = panel.windows(fc.horizon, request.validation.folds)
    freq = fc.offset_alias or panel_frequency(panel)
    if freq is None:
        raise PermanentError("the time column has no regular frequency; give 'frequency'")
    season = baselines.season_length(freq, fc.seasonality)
    grid: dict[str, Any] = {
        "time_column": time_col,
        "id_columns": ids,
        "freq": freq,
        "horizon": fc.horizon,
        "ends": {s.key: s.times[-1] for s in panel.series},
    }
    common = {"series": len(panel.series), "freq": freq, **window_params(windows)}
    lengths = [w.length for w in windows]
    for kind in kinds:
        params = {"season": season, **common}
        try:
            folds = [_baseline_fold(panel, window, kind, season) for window in windows]
        except (ValueError, np.linalg.LinAlgError) as exc:
            log.log_failed(kind, params, f"{type(exc).__name__}: {exc}")
            continue
        histories = {s.key: s.values for s in panel.series}
        model = PanelBaseline(kind, histories, season, **grid)
        with_intervals(model, fc.forecast_quantiles, folds, lengths)
        log.log(
            kind,
            params,
            aggregate([f.metrics(Task.FORECASTING) for f in folds]),
            _constant(model),
        )
    if GLOBAL_LEARNER in learners:
        lags = lag_count(season, fc.horizon)
        params = {"model": "global", "lags": lags, **common}
        try:
            folds = [_global_fold(panel, window, lags) for window in windows]
        except ValueError as exc:
            log.log_failed(GLOBAL_ALGORITHM, params, f"{type(exc).__name__}: {exc}")
            return
        log.log(
            GLOBAL_ALGORITHM,
            params,
            aggregate([f.metrics(Task.FORECASTING) for f in folds]),
            lambda: with_intervals(
                _final_global(panel, lags, fc.horizon, grid), fc.forecast_quantiles, folds, lengths
            ),
        )


def _cutoffs(panel: Panel, window: Window) -> list[int]:
    """Each series' cutoff of ``window`` (planned on the shortest series): as many points
    from its own end."""
    shortest = min(len(s.values) for s in panel.series)
    back = shortest - window.cutoff
    return [len(s.values) - back for s in panel.series]


def _baseline_fold(panel: Panel, window: Window, kind: str, season: int) -> Fold:
    """Every series' baseline forecasts of ``window``, pooled; ValueError naming a series
    the baseline cannot fit."""
    truth, predicted = [], []
    for series, cutoff in zip(panel.series, _cutoffs(panel, window), strict=True):
        try:
            ahead = baselines.forecast(kind, series.values[:cutoff], window.length, season)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise ValueError(f"series {panel.describe(series.key)}: {exc}") from None
        truth.append(series.values[cutoff : cutoff + window.length])
        predicted.append(ahead)
    return Fold(np.concatenate(truth), np.concatenate(predicted))


def regressor(rows: int) -> Any:
    """The global model's LightGBM regressor, sized for ``rows`` training rows."""
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=max(3, min(20, rows // 50)),
        subsample=1.0,
        random_state=SEED,
        n_jobs=1,
        verbose=-1,
    )


def _global_fold(panel: Panel, window: Window, lags: int) -> Fold:
    """The global model trained on the points before ``window`` in every series, and its
    forecasts of the window, pooled."""
    cutoffs = _cutoffs(panel, window)
    X, y = lag_rows(panel, cutoffs, lags, window.length)
    model = regressor(len(X)).fit(X, y)
    truth, predicted = [], []
    for code, (series, cutoff) in enumerate(zip(panel.series, cutoffs, strict=True)):
        dates = series.times[cutoff : cutoff + window.length]
        rows, scales = forecast_rows(series.values, cutoff - 1, lags, code, dates)
        truth.append(series.values[cutoff : cutoff + window.length])
        predicted.append(np.asarray(model.predict(rows), dtype=float) * scales)
    return Fold(np.concatenate(truth), np.concatenate(predicted))


def _final_global(panel: Panel, lags: int, horizon: int, grid: dict[str, Any]) -> PanelGlobal:
    """The global model refitted on every point of every series."""
    X, y = lag_rows(panel, [len(s.values) for s in panel.series], lags, horizon)
    model = regressor(len(X)).fit(X, y)
    return PanelGlobal(
        model,
        lags,
        {s.key: s.values[-lags:] for s in panel.series},
        {s.key: code for code, s in enumerate(panel.series)},
        **grid,
    )


def _constant(model: Any) -> Any:
    return lambda: model
