"""LightGBM on lagged values, for one series or many: a few configurations, each a child run.

Blocking; runs inside the trainer process. The model's rows are ``panel.lag_rows``: for a
forecast origin and a step ahead, the last ``lags`` values before the origin scaled by
their mean, the step, the target date's month and weekday and the series' number; its
target is the value that many steps later, scaled the same way (one model forecasts every
step of the horizon directly). One series is a panel of one.

The first configuration is LightGBM's own defaults (``LGBMRegressor()``), the starting
point a user would try by hand; the next, for one series, is the same defaults the way one
often writes it by hand, on the raw lags for the next value only, forecasting recursively
(``panel.OneStepAhead``; not for many series: ``GLOBAL_CONFIGS``); the others follow
while the time given allows another as long as the longest so far. Each is scored on the
same backtest windows as every other candidate (trained on each window's earlier points)
and logged as a child run under the Azure name ``LightGBM``, its ``model`` param ``lags``
(one series) or ``global`` (many).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ...logs import get_logger
from ...metrics import Task
from ...request import AutoMLRequest
from .backtest import Window, aggregate, window_params, window_times
from .baselines import season_length
from .budget import Budget
from .forecasters import LagForecaster
from .horizon import ForecastGrid
from .intervals import with_intervals
from .panel import OneStepAhead, Panel, Series, cutoffs, lag_count, lag_path, lag_rows
from .predictions import Backtest, Fold
from .trials import TrialLog

SEED = 42
#: The Azure name the lag models are logged under, and the FLAML learner that enables them.
ALGORITHM = "LightGBM"
LEARNER = "lgbm"

#: A configuration's marker (not a LightGBM parameter): one step ahead on raw lags,
#: forecast recursively.
RECURSIVE = "recursive"

#: The configurations tried, in order (name, LightGBM parameters); the first is LightGBM's
#: defaults. ``min_child_samples`` above the rows' twentieth is lowered to it (at least 3),
#: so a small table still grows trees.
CONFIGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("defaults", {}),
    ("defaults-recursive", {RECURSIVE: True}),
    ("slow", {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15}),
    (
        "small-leaves",
        {"n_estimators": 300, "learning_rate": 0.03, "num_leaves": 7, "min_child_samples": 5},
    ),
    (
        "linear-trees",
        {"linear_tree": True, "num_leaves": 7, "learning_rate": 0.05, "n_estimators": 200},
    ),
    (
        "bagged",
        {
            "n_estimators": 400,
            "learning_rate": 0.03,
            "num_leaves": 31,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
        },
    ),
)

#: Many series: the configurations without the recursive one. Raw values of series of
#: different sizes do not share one set of trees (its splits on levels belong to one series
#: or another); the global model keeps to rows scaled by their own level.
GLOBAL_CONFIGS = tuple((name, c) for name, c in CONFIGS if not c.get(RECURSIVE))

#: The registered model of a fitted regressor: (regressor, lags) -> pyfunc model.
Final = Callable[[Any, int], Any]


def regressor(config: dict[str, Any], rows: int) -> Any:
    """An unfitted LightGBM regressor of ``config`` for ``rows`` training rows."""
    from lightgbm import LGBMRegressor

    settings = {"random_state": SEED, "n_jobs": 1, "verbose": -1, **config}
    child = int(settings.get("min_child_samples", 20))
    settings["min_child_samples"] = max(3, min(child, rows // 20))
    return LGBMRegressor(**settings)


def window_fold(panel: Panel, window: Window, lags: int, config: dict[str, Any]) -> Fold:
    """The model trained on the points before ``window`` in every series, and its
    forecasts of the window, every series' one after another."""
    ends = cutoffs(panel, window)
    model = fit(panel, ends, lags, window.length, config)
    truth = [s.values[c : c + window.length] for s, c in zip(panel.series, ends, strict=True)]
    tails = [s.values[:c] for s, c in zip(panel.series, ends, strict=True)]
    dates = [s.times[c : c + window.length] for s, c in zip(panel.series, ends, strict=True)]
    codes = list(range(len(panel.series)))
    if isinstance(model, OneStepAhead):
        predicted = model.paths(tails, lags, codes, dates)
    else:
        predicted = [
            lag_path(model, tail, lags, code, when)
            for tail, code, when in zip(tails, codes, dates, strict=True)
        ]
    return Fold(np.concatenate(truth), np.concatenate(predicted))


def fit(panel: Panel, ends: Sequence[int], lags: int, horizon: int, config: dict[str, Any]) -> Any:
    """The model of ``config`` fitted on the points before ``ends`` (each series' own):
    a regressor of every step of ``horizon``, or a ``OneStepAhead`` one."""
    settings = {k: v for k, v in config.items() if k != RECURSIVE}
    if config.get(RECURSIVE):
        X, y = lag_rows(panel, ends, lags, 1, scaled=False)
        return OneStepAhead(regressor(settings, len(X)).fit(X, y))
    X, y = lag_rows(panel, ends, lags, horizon)
    return regressor(settings, len(X)).fit(X, y)


def fit_all(panel: Panel, lags: int, horizon: int, config: dict[str, Any]) -> Any:
    """The model of ``config`` fitted on every point of every series."""
    return fit(panel, [len(s.values) for s in panel.series], lags, horizon, config)


def search_lag_models(
    log: TrialLog,
    panel: Panel,
    windows: list[Window],
    *,
    lags: int,
    horizon: int,
    kind: str,
    params: dict[str, Any],
    final: Final,
    quantiles: Sequence[float] | None,
    budget: Budget | None = None,
    configs: Sequence[tuple[str, dict[str, Any]]] = CONFIGS,
    times: list[Any] | None = None,
    series: list[Any] | None = None,
) -> int:
    """Log one child run per configuration tried (``kind`` is its ``model`` param); the
    first always runs, each next one while ``budget`` allows another as long as the
    longest so far. Returns how many were tried. ``times`` (each window's) and, for many
    series, ``series`` (each window's rows' series) are kept with the backtest forecasts,
    for the insight's charts."""
    lengths = [w.length for w in windows]
    longest = 0.0
    tried = 0
    for position, (name, config) in enumerate(configs):
        if position and budget is not None and not budget.allows(longest):
            get_logger("automl_service.trainer").info(
                "search.lag_configs_skipped", tried=tried, left=len(configs) - tried
            )
            break
        started = time.monotonic()
        began = time.time()
        run_params = {"model": kind, "lags": lags, "config": name, **config, **params}
        tried += 1
        try:
            folds = [window_fold(panel, window, lags, config) for window in windows]
        except ValueError as exc:
            log.log_failed(ALGORITHM, run_params, f"{type(exc).__name__}: {exc}")
            continue

        def model(config: dict[str, Any] = config, folds: list[Fold] = folds) -> Any:
            built = final(fit_all(panel, lags, horizon, config), lags)
            return with_intervals(built, quantiles, folds, lengths)

        log.log(
            ALGORITHM,
            run_params,
            aggregate([f.metrics(Task.FORECASTING) for f in folds]),
            model,
            predictions=Backtest(folds, list(times or []), list(series or [])),
            started_at=began,
        )
        # The registered model is one more fit, on every point.
        longest = max(longest, (time.monotonic() - started) * (1 + 1 / len(windows)))
    return tried


#: One series: the share of the search's time the configurations after the defaults may
#: take (FLAML's search gets the rest).
SINGLE_SERIES_SHARE = 0.25


def run_lag_models(
    request: AutoMLRequest,
    log: TrialLog,
    series: pd.DataFrame,
    windows: list[Window],
    freq: str,
    budget: Budget | None = None,
) -> int:
    """The lag models of one series (sorted by time, the target and time columns), on its
    backtest ``windows``; the registered model forecasts the horizon after the series.
    Returns how many configurations were tried."""
    assert request.forecasting is not None
    fc = request.forecasting
    time_col = fc.time_column_name
    values = series[request.target_column_name].to_numpy(dtype=float)
    one = Series((), pd.DatetimeIndex(series[time_col]), values)
    panel = Panel((), (one,))
    season = season_length(freq, fc.seasonality)
    lags = lag_count(season, fc.horizon, min(w.cutoff for w in windows))
    grid = ForecastGrid(time_col, freq, pd.Timestamp(one.times[-1]), fc.horizon)
    share = None
    if budget is not None:
        share = Budget(SINGLE_SERIES_SHARE * budget.search_seconds(), budget.clock(), budget.clock)
    return search_lag_models(
        log,
        panel,
        windows,
        lags=lags,
        horizon=fc.horizon,
        kind="lags",
        params={"freq": freq, "season": season, **window_params(windows)},
        final=lambda fitted, lags: LagForecaster(fitted, lags, one.values[-lags:], grid),
        quantiles=fc.forecast_quantiles,
        budget=share,
        times=window_times(series[time_col], windows),
    )
