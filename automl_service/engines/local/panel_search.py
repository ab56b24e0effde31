"""Forecasting many series in one table: per-series baselines, one global LightGBM, and
their VotingEnsemble.

Blocking; runs inside the trainer process. Each candidate is one child run: a baseline
fitted on every series, or a LightGBM regressor fitted on all series at once
(``lag_models``: LightGBM's defaults, then other configurations while time allows). All
are scored on the same backtest windows (counted from each series' own end); in each
window the canonical metrics are computed on every series' forecasts **pooled** (one set
of rows, as the registered model answers them), and the run's metrics are the mean over
windows, each window's logged as ``<metric>_window_<i>``. The ensemble of the best of
them (``forecast_ensemble``) follows while time is left. The other FLAML learners are not
run on many series.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ...errors import PermanentError
from ...metrics import Task
from ...request import AutoMLRequest
from . import baselines
from .backtest import Window, aggregate, window_params
from .budget import Budget
from .forecast_ensemble import ensemble_within
from .intervals import with_intervals
from .lag_models import ALGORITHM as GLOBAL_ALGORITHM
from .lag_models import GLOBAL_CONFIGS, search_lag_models
from .lag_models import LEARNER as GLOBAL_LEARNER
from .panel import Panel, cutoffs, lag_count, panel_frequency, split_panel, window_rows
from .panel_forecasters import PanelBaseline, PanelEnsemble, PanelGlobal
from .predictions import Backtest, Fold
from .table_checks import check_columns
from .trials import TrialLog

__all__ = ["GLOBAL_ALGORITHM", "GLOBAL_LEARNER", "search_panel"]


def search_panel(
    request: AutoMLRequest,
    log: TrialLog,
    learners: tuple[str, ...],
    kinds: tuple[str, ...],
    frame: pd.DataFrame,
    budget: Budget | None = None,
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
    windows = panel.windows(fc.horizon, request.validation.folds, fc.cv_step_size)
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
    times, labels = window_rows(panel, windows)
    for kind in kinds:
        params = {"season": season, **common}
        started = time.time()
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
            predictions=Backtest(folds, times, labels),
            started_at=started,
        )
    if GLOBAL_LEARNER in learners:
        lags = lag_count(season, fc.horizon, min(windows, key=lambda w: w.cutoff).cutoff)
        codes = {s.key: code for code, s in enumerate(panel.series)}
        tails = {s.key: s.values[-lags:] for s in panel.series}
        search_lag_models(
            log,
            panel,
            windows,
            lags=lags,
            horizon=fc.horizon,
            kind="global",
            params=common,
            final=lambda fitted, lags: PanelGlobal(fitted, lags, tails, codes, **grid),
            quantiles=fc.forecast_quantiles,
            budget=None if budget is None else budget.for_search(),
            configs=GLOBAL_CONFIGS,
            times=times,
            series=labels,
        )
    build = lambda members, weights: PanelEnsemble(members, weights, **grid)  # noqa: E731
    ensemble_within(request, log, lengths, build, budget)


def _baseline_fold(panel: Panel, window: Window, kind: str, season: int) -> Fold:
    """Every series' baseline forecasts of ``window``, pooled; ValueError naming a series
    the baseline cannot fit."""
    truth, predicted = [], []
    for series, cutoff in zip(panel.series, cutoffs(panel, window), strict=True):
        try:
            ahead = baselines.forecast(kind, series.values[:cutoff], window.length, season)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise ValueError(f"series {panel.describe(series.key)}: {exc}") from None
        truth.append(series.values[cutoff : cutoff + window.length])
        predicted.append(ahead)
    return Fold(np.concatenate(truth), np.concatenate(predicted))


def _constant(model: Any) -> Any:
    return lambda: model
