"""One training attempt: data, split, baselines, the FLAML search, the winners' models.

Blocking; runs inside the trainer process. A trial whose learner raises (in FLAML's fit or
in scoring) is logged as a FAILED child run with its error, and the search goes on; the
caller fails the job only when no trial produced a model. Raises PermanentError for a
request that can never train (missing column, unknown algorithm, unusable series); other
exceptions are bugs or environment faults. Either way the caller ends the parent run FAILED.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...errors import PermanentError
from ...logs import get_logger
from ...metrics import Goal, Task, as_loss, goal_of
from ...request import AutoMLRequest
from ...runs import RunRecord
from ...tags import SEARCHED_ROWS_TAG
from . import algorithms, baselines, free_memory, refit_rows
from .azure_only import flaml_n_jobs
from .backtest import Window, aggregate, plan_windows, window_params, window_times
from .budget import Budget
from .column_medians import column_medians
from .compact import compact
from .datasets import load_table
from .ensemble import EnsembleModel, add_vote_ensemble, ensembles_wanted
from .forecast_ensemble import ensemble_within
from .forecasters import BaselineForecaster, EnsembleForecaster, FlamlForecaster
from .guarded import fit_error, guard_learners, unguarded
from .horizon import ForecastGrid
from .intervals import with_intervals
from .lag_models import LEARNER as LAG_LEARNER
from .lag_models import run_lag_models
from .large_csv import FileRows, large_csv, read_sampled
from .model import FlamlModel
from .panel_search import search_panel
from .predictions import Backtest, Fold, HeldOut
from .refit_rows import AllRows
from .sampling import search_sample
from .table_checks import check_columns, check_trainable
from .testset import refuse_for_forecasts, score_winners, split_off_test, test_size
from .trials import TrialLog

SEED = 42
DEFAULT_VALIDATION_SIZE = 0.2
#: Without a validation option, tables smaller than this are scored by k-fold
#: cross-validation (as Azure AutoML does): a holdout of a few dozen rows picks the
#: luckiest of hundreds of trials, not the best. Larger tables use a holdout.
CV_BELOW_ROWS = 20_000
DEFAULT_FOLDS = 5


def key_columns(request: AutoMLRequest) -> list[str]:
    """The columns compaction leaves as they are: the target, and a forecast's time and
    series id columns."""
    keys = [request.target_column_name]
    if request.forecasting is not None:
        keys.append(request.forecasting.time_column_name)
        keys.extend(request.forecasting.time_series_id_column_names)
    return keys


def log_event(event: str, **fields: Any) -> None:
    """One line to the trainer's log: where the budget went, and the trainer's peak
    memory so far."""
    get_logger("automl_service.trainer").info(event, **fields, peak_mb=peak_memory_mb())


def peak_memory_mb() -> int | None:
    """This process's peak resident memory in MiB (Linux's VmHWM), None where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


#: Why a leader keeps its scored fit when the time limit leaves no room to refit it.
NO_TIME_TO_REFIT = "not refitted on all rows: the time limit was reached"


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    y_train: pd.Series
    X_val: pd.DataFrame | None
    y_val: pd.Series | None
    n_splits: int | None = None

    def all_rows(self) -> tuple[pd.DataFrame, pd.Series]:
        if self.X_val is None or self.y_val is None:
            return self.X_train, self.y_train
        return pd.concat([self.X_train, self.X_val]), pd.concat([self.y_train, self.y_val])


def split_tabular(request: AutoMLRequest, frame: pd.DataFrame) -> Split:
    """Train/validation split for classification and regression (fixed seed)."""
    from sklearn.model_selection import train_test_split

    target = request.target_column_name
    frame = frame.dropna(subset=[target])
    X, y = frame.drop(columns=[target]), frame[target]
    validation = request.validation
    if validation.folds:
        return Split(X, y, None, None, validation.folds)
    if not (validation.validation_data or validation.validation_size) and len(X) < CV_BELOW_ROWS:
        return Split(X, y, None, None, DEFAULT_FOLDS)
    if validation.validation_data:
        val = load_table(validation.validation_data)
        check_columns(val, [target, *X.columns], "validation")
        val = val.dropna(subset=[target])
        return Split(X, y, val[list(X.columns)], val[target])
    size = validation.validation_size or DEFAULT_VALIDATION_SIZE
    stratify = y if request.task is Task.CLASSIFICATION and y.value_counts().min() >= 2 else None
    try:
        X_tr, X_va, y_tr, y_va = train_test_split(
            X, y, test_size=size, random_state=SEED, stratify=stratify
        )
    except ValueError:
        X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=size, random_state=SEED)
    return Split(X_tr, y_tr, X_va, y_va)


def prepare_series(
    request: AutoMLRequest, frame: pd.DataFrame
) -> tuple[pd.DataFrame, list[Window]]:
    """One series (a table without series ids) sorted by time, and its backtest windows,
    latest first: the request's validation table (appended to the series) as the one
    window when it gives one, else ``backtest.plan_windows`` with
    ``validation.n_cross_validations`` windows when asked, ``forecasting.cv_step_size``
    periods apart when given."""
    assert request.forecasting is not None
    fc = request.forecasting
    time_col, target = fc.time_column_name, request.target_column_name
    series = _by_time(frame, time_col, target)
    if request.validation.validation_data:
        holdout = load_table(request.validation.validation_data)
        holdout = holdout.drop(columns=request.ignored_columns, errors="ignore")
        check_columns(holdout, list(series.columns), "validation")
        holdout = _by_time(holdout, time_col, target)
        joined = pd.concat([series, holdout], ignore_index=True)
        return joined, [Window(0, len(series), len(holdout))]
    windows = plan_windows(len(series), fc.horizon, request.validation.folds, fc.cv_step_size)
    return series, windows


def _by_time(frame: pd.DataFrame, time_col: str, target: str) -> pd.DataFrame:
    """Rows with a target, sorted by their time column parsed as datetimes."""
    frame = frame.copy()
    frame[time_col] = pd.to_datetime(frame[time_col])
    return frame.dropna(subset=[target]).sort_values(time_col).reset_index(drop=True)


def series_frequency(request: AutoMLRequest, times: pd.Series) -> str:
    assert request.forecasting is not None
    if request.forecasting.offset_alias:
        return request.forecasting.offset_alias
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(pd.DatetimeIndex(times))
    if freq is None:
        raise PermanentError("the time column has no regular frequency; give 'frequency'")
    return str(getattr(freq, "freqstr", freq))


def scored_grid(
    request: AutoMLRequest, series: pd.DataFrame, window: Window, freq: str
) -> ForecastGrid:
    """The grid a model fitted on the rows before ``window`` forecasts on: the window's
    periods after them (and at least the horizon)."""
    assert request.forecasting is not None
    time_col = request.forecasting.time_column_name
    return ForecastGrid(
        time_col,
        freq,
        pd.Timestamp(series[time_col].iloc[window.cutoff - 1]),
        max(window.length, request.forecasting.horizon),
    )


def run_baselines(
    request: AutoMLRequest,
    log: TrialLog,
    kinds: tuple[str, ...],
    series: pd.DataFrame,
    windows: list[Window],
    freq: str,
) -> None:
    """Score each baseline on every backtest window (its metrics the mean over them, each
    window's logged too) as a child run; one that cannot fit the series before some
    window is a FAILED child run with the reason."""
    assert request.forecasting is not None
    time_col, target = request.forecasting.time_column_name, request.target_column_name
    season = baselines.season_length(freq, request.forecasting.seasonality)
    y = series[target].to_numpy(dtype=float)
    # The logged model forecasts the horizon after the whole series.
    final_grid = ForecastGrid(
        time_col,
        freq,
        pd.Timestamp(series[time_col].iloc[-1]),
        request.forecasting.horizon,
    )
    for kind in kinds:
        params = {"season": season, "freq": freq, **window_params(windows)}
        started = time.time()
        try:
            folds = [
                Fold(y[w.cutoff : w.end], baselines.forecast(kind, y[: w.cutoff], w.length, season))
                for w in windows
            ]
        except (ValueError, np.linalg.LinAlgError) as exc:
            log.log_failed(kind, params, f"{type(exc).__name__}: {exc}")
            continue
        metrics = aggregate([f.metrics(Task.FORECASTING) for f in folds])
        final = BaselineForecaster(kind, y, final_grid, season)
        quantiles = request.forecasting.forecast_quantiles
        with_intervals(final, quantiles, folds, [len(f.y_true) for f in folds])
        times = window_times(series[time_col], windows)
        log.log(
            kind,
            params,
            metrics,
            _constant(final),
            predictions=Backtest(folds, times),
            started_at=started,
        )


#: Window 0 when the metric is given no windows: FLAML's own holdout, whatever its rows.
FLAML_HOLDOUT = Window(0, 0, 0)


class ExitScoreReached(Exception):
    """Raised through FLAML by the metric when a trial reaches ``limits.exit_score``: it
    ends the search there (FLAML has no other way to be stopped from outside)."""


class FlamlMetric:
    """FLAML's custom ``metric``: scores a trial, logs it as a child run, returns the loss."""

    def __init__(
        self,
        request: AutoMLRequest,
        log: TrialLog,
        automl: Any,
        features: list[str],
        n_splits: int | None = None,
        grid: ForecastGrid | None = None,
        exogenous: pd.DataFrame | None = None,
        windows: list[Window] | None = None,
    ):
        self.request = request
        self.n_splits = n_splits
        self.log = log
        self.automl = automl
        self.features = features
        self.goal = goal_of(request.metric, request.task)
        self.folds: dict[str, list[Fold]] = {}
        #: Trials that failed, by key, and how many of their folds have been seen.
        self.failed: dict[str, int] = {}
        #: Forecasting: the grid a trial's model is scored on, and the exogenous columns.
        self.grid = grid
        self.exogenous = exogenous
        #: Forecasting: the backtest windows, latest first (FLAML's holdout is window 0).
        self.windows = windows
        #: Forecasting: the whole series (FLAML's dataset), for the earlier windows and to
        #: refit the logged models on.
        self.full_series: Any = None
        #: When FLAML began fitting the trial being scored: the end of the previous call
        #: (FLAML fits the next trial in between), per trial its first fold's.
        self._since = time.time()
        self._began: dict[str, float] = {}

    def __call__(
        self,
        X_val: Any,
        y_val: Any,
        estimator: Any,
        labels: Any,
        X_train: Any,
        y_train: Any,
        weight_val: Any = None,
        weight_train: Any = None,
        config: Any = None,
        groups_val: Any = None,
        groups_train: Any = None,
    ) -> tuple[float, dict[str, float]]:
        try:
            return self._score(X_val, y_val, estimator, labels, config)
        finally:
            self._since = time.time()

    def _score(
        self, X_val: Any, y_val: Any, estimator: Any, labels: Any, config: Any
    ) -> tuple[float, dict[str, float]]:
        params = dict(config or {})
        algorithm = algorithms.azure_name(self.request.task, self._learner(estimator))
        key = algorithm + repr(sorted(params.items()))
        began = self._began.setdefault(key, self._since)
        error = fit_error(estimator)
        folds: list[Fold] | None = None
        times: list[Any] = []
        if error is None:
            try:
                if self.request.task is Task.FORECASTING:
                    folds, times = self._backtest(X_val, estimator)
                else:
                    folds = [self._predict(X_val, y_val, estimator, labels)]
            except Exception as exc:  # the learner's own failure to fit or predict
                error = f"{type(exc).__name__}: {exc}"
        if folds is None:
            return self._failed(key, algorithm, params, estimator, error or "no predictions")
        fold = folds[0]
        window_folds = folds
        if self.request.task is Task.FORECASTING:
            # Every window's metrics, and their mean as the trial's (and FLAML's loss).
            metrics = aggregate([f.metrics(self.request.task) for f in folds])
            loss = self._loss(metrics)
            pooled: Fold | Backtest | None = Backtest(folds, times)
            params.update(window_params(self.windows or [FLAML_HOLDOUT]))
        elif self.n_splits:
            # Each fold returns its primary metric for FLAML's loss; the trial's canonical
            # metrics are computed once, on the pooled out-of-fold predictions.
            loss = self._loss(fold.metrics(self.request.task, names=(self.request.metric,)))
            folds = self.folds.setdefault(key, [])
            folds.append(fold)
            if len(folds) < self.n_splits:
                return loss, {"pred_time": 0.0}
            del self.folds[key]
            pooled = Fold.pool(folds)
            metrics = (
                pooled.metrics(self.request.task)
                if pooled is not None
                else _mean([f.metrics(self.request.task) for f in folds])
            )
        else:
            pooled = fold
            metrics = fold.metrics(self.request.task)
            loss = self._loss(metrics)
        params["learner"] = self._learner(estimator)
        self._began.pop(key, None)
        self.log.log(
            algorithm,
            params,
            metrics,
            lambda: self._model(estimator, window_folds),
            predictions=tuple(window_folds) if pooled is None and self.windows else pooled,
            started_at=began,
        )
        if reaches(self.request, metrics.get(self.request.metric)):
            raise ExitScoreReached(f"{self.request.metric} = {metrics[self.request.metric]:.6g}")
        return loss, {"pred_time": 0.0}

    def _failed(
        self, key: str, algorithm: str, params: dict[str, Any], estimator: Any, error: str
    ) -> tuple[float, dict[str, float]]:
        """Log a failed trial once (under cross-validation, at its first failing fold) and
        answer FLAML an infinite loss, so the search moves on."""
        self.folds.pop(key, None)
        seen = self.failed.get(key, 0) + 1
        if seen == 1:
            params["learner"] = self._learner(estimator)
            self.log.log_failed(algorithm, params, error)
        if self.n_splits and seen < self.n_splits:
            self.failed[key] = seen
        else:
            self.failed.pop(key, None)
            self._began.pop(key, None)
        return math.inf, {"pred_time": 0.0}

    def _loss(self, metrics: dict[str, float]) -> float:
        return as_loss(metrics.get(self.request.metric, math.nan), self.goal)

    def _learner(self, estimator: Any) -> str:
        for name, cls in self.automl._state.learner_classes.items():
            if type(estimator) is cls:
                return str(name)
        return type(estimator).__name__

    def _backtest(self, X_val: Any, estimator: Any) -> tuple[list[Fold], list[Any]]:
        """The trial's forecasts on every window, latest first, and the times of each
        window's rows: FLAML's fit for window 0 (FLAML's holdout), a copy of the learner
        with the same configuration refitted on the rows before each earlier window.
        Without windows, FLAML's holdout is the one window. Raises the learner's error of
        any window."""
        if self.full_series is None:
            self.full_series = _joined(X_val)
        folds = []
        times = []
        for window in self.windows or [FLAML_HOLDOUT]:
            if window.index == 0:
                model, data = estimator, X_val
            else:
                data = _window(self.full_series, window)
                model = copy.deepcopy(estimator)
                model.fit(data, period=window.length)
                error = fit_error(model)
                if error is not None:
                    raise ValueError(f"backtest window {window.index}: {error}")
            y_true = data.test_data[data.target_names[0]].to_numpy()
            folds.append(Fold(y_true, np.asarray(model.predict(data), dtype=float).ravel()))
            times.append(data.test_data[data.time_col].to_numpy())
        return folds, times

    def _predict(self, X_val: Any, y_val: Any, estimator: Any, labels: Any) -> Fold:
        task = self.request.task
        y_pred = np.asarray(estimator.predict(X_val))
        if task is Task.CLASSIFICATION:
            proba = np.asarray(estimator.predict_proba(X_val))
            model = getattr(estimator, "_model", None)
            classes = getattr(model, "classes_", None)
            if classes is None:
                classes = labels if labels is not None else np.unique(np.asarray(y_val))
            return Fold(np.asarray(y_val), y_pred, proba, list(classes))
        return Fold(np.asarray(y_val), y_pred)

    def _model(
        self, estimator: Any, folds: list[Fold] | None = None
    ) -> FlamlModel | FlamlForecaster:
        """The trial's pyfunc model; a forecaster with the intervals of its backtest
        ``folds`` when the request asks for quantiles."""
        state = self.automl._state
        if self.grid is not None:
            forecaster = FlamlForecaster(
                unguarded(estimator),
                state.task,
                self.automl._transformer,
                self.features,
                self.grid,
                self.exogenous,
            )
            assert self.request.forecasting is not None
            quantiles = self.request.forecasting.forecast_quantiles
            lengths = [len(f.y_true) for f in folds or []]
            with_intervals(forecaster, quantiles, folds or [], lengths)
            return forecaster
        model = FlamlModel(
            unguarded(estimator),
            state.task,
            self.automl._transformer,
            self.automl._label_transformer,
            self.features,
        )
        model.learner = self._learner(estimator)
        return model


#: LightGBM's default parameters in FLAML's search space (bounds where 0 is out of range).
LIGHTGBM_DEFAULTS: dict[str, float] = {
    "n_estimators": 100,
    "num_leaves": 31,
    "min_child_samples": 20,
    "learning_rate": 0.1,
    "log_max_bin": 8,
    "colsample_bytree": 1.0,
    "reg_alpha": 1 / 1024,
    "reg_lambda": 1 / 1024,
}
#: LightGBM places its bin edges from a sample of at most this many rows, not its default
#: 200,000: building a dataset of 20 columns from 200,000 rows held 68 MB, from 50,000 rows
#: 25 MB, and 50,000 rows still give each of its at most 255 bins about 200 values.
#: Tables with fewer rows are binned on every row, as by default.
LIGHTGBM_BIN_SAMPLE_ROWS = 50_000


def search(
    request: AutoMLRequest, log: TrialLog, budget: Budget | None = None
) -> list[tuple[RunRecord, Any]]:
    """Run baselines and the FLAML search; return the leaders (run record, pyfunc model).

    Everything here comes out of ``budget`` (the request's time limit from now when not
    given): the search gets what is left less a reserve, the ensemble and the refits run
    while time is left."""
    from flaml.automl import AutoML

    budget = budget or Budget(request.limits.timeout_seconds, time.time())

    reading = time.monotonic()
    target = request.target_column_name
    large = read_large_sample(request, budget)
    file_rows: FileRows | None = None
    if large is not None:
        frame, file_rows = large
        del large
        free_memory.release()  # what reading the file left behind
        log_event(
            "search.read",
            rows=file_rows.count,
            sampled=len(frame),
            seconds_spent=round(budget.spent(), 1),
        )
    else:
        frame = load_table(request.training_data, keep=key_columns(request))
        check_columns(frame, [target], "target")
        check_columns(frame, request.ignored_columns, "ignored")
        frame = frame.drop(columns=request.ignored_columns)
        frame, compacted = compact(frame, keep=key_columns(request))
        if compacted:
            log_event("search.compacted", rows=len(frame), columns=len(compacted))
        log_event("search.read", rows=len(frame), seconds_spent=round(budget.spent(), 1))
    read_rows = file_rows.count if file_rows is not None else len(frame)
    refusal = budget.too_small(
        f"starting and reading {read_rows:,} rows", took=time.monotonic() - reading
    )
    if refusal:
        raise PermanentError(refusal)
    log.searching(until=budget.clock() + budget.search_seconds())
    check_trainable(frame, target, request.task)
    chosen = algorithms.plan(
        request.task, request.training.allowed_algorithms, request.training.blocked_algorithms
    )
    limits = request.limits
    settings: dict[str, Any] = {
        "early_stop": limits.enable_early_termination,
        "n_jobs": flaml_n_jobs(limits),
        "mlflow_logging": False,
        "verbose": 0,
        "seed": SEED,
        "retrain_full": False,
    }
    if limits.max_trials:
        settings["max_iter"] = limits.max_trials
    if limits.trial_timeout_seconds:
        settings["train_time_limit"] = limits.trial_timeout_seconds
    automl = AutoML()  # type: ignore[no-untyped-call]
    if request.task is Task.FORECASTING:
        assert request.forecasting is not None
        refuse_for_forecasts(request)
        time_col = request.forecasting.time_column_name
        check_columns(frame, [time_col], "time")
        if request.forecasting.time_series_id_column_names:
            search_panel(request, log, chosen.learners, chosen.baselines, frame, budget)
            return log.winners()
        series, windows = prepare_series(request, frame)
        freq = series_frequency(request, series[time_col])
        run_baselines(request, log, chosen.baselines, series, windows, freq)
        if LAG_LEARNER in chosen.learners:
            run_lag_models(request, log, series, windows, freq, budget)
        features = [c for c in series.columns if c != target]
        # FLAML searches with window 0 as its holdout; the metric scores the other windows.
        latest = windows[0]
        train, holdout = series.iloc[: latest.cutoff], series.iloc[latest.cutoff :]
        if chosen.learners:
            exogenous = [c for c in features if c != time_col]
            metric = FlamlMetric(
                request,
                log,
                automl,
                features,
                grid=scored_grid(request, series, latest, freq),
                exogenous=series[exogenous] if exogenous else None,
                windows=windows,
            )
            guard_learners(automl, "ts_forecast", chosen.learners)
            settings["time_budget"] = budget.search_seconds()
            fit_until_exit_score(
                automl,
                X_train=train[features],
                y_train=train[target],
                X_val=holdout[features],
                y_val=holdout[target],
                task="ts_forecast",
                period=latest.length,
                time_col=time_col,
                estimator_list=list(chosen.learners),
                metric=metric,
                **settings,
            )
        log.finishing()
        end = pd.Timestamp(series[time_col].iloc[-1])
        final_grid = ForecastGrid(time_col, freq, end, request.forecasting.horizon)
        ensemble_within(
            request,
            log,
            [w.length for w in windows],
            lambda members, weights: EnsembleForecaster(members, weights, final_grid),
            budget,
        )
        if chosen.learners:
            refit_forecasters(log, metric.full_series, latest.length, end, budget)
    else:
        frame, test = split_off_test(request, frame)
        if frame[target].isna().any():
            frame = frame.dropna(subset=[target])
        by_class = request.task is Task.CLASSIFICATION
        if file_rows is None:
            searched = search_sample(frame, target, budget.search_seconds(), by_class)
        else:
            searched = frame  # the file's sample, read alone
        sampled = file_rows is not None or len(searched) < len(frame)
        every_row: AllRows | None = None
        if file_rows is not None:
            every_row = refit_rows.file_rows(file_rows)
        elif sampled:
            every_row = refit_rows.table_rows(frame, target)
        del frame  # a table in memory stays in every_row; a file's sample goes once split
        if sampled:
            assert every_row is not None
            log_event("search.sampled", rows=len(searched), of=every_row.count)
            log.client.set_tag(log.parent_run_id, SEARCHED_ROWS_TAG, str(len(searched)))
        split = split_tabular(request, searched)
        del searched
        if sampled:
            free_memory.release()  # the sample, now copied into the split
        features = list(split.X_train.columns)
        metric = FlamlMetric(request, log, automl, features, split.n_splits)
        if "lgbm" in chosen.learners:
            # Start LightGBM's search at LightGBM's own defaults, so the candidates always
            # include what a user gets with `LGBMClassifier()` by hand.
            settings["starting_points"] = {"lgbm": LIGHTGBM_DEFAULTS}
            if len(split.X_train) > LIGHTGBM_BIN_SAMPLE_ROWS:
                bins = {"bin_construct_sample_cnt": {"domain": LIGHTGBM_BIN_SAMPLE_ROWS}}
                settings["custom_hp"] = {"lgbm": bins}
        guard_learners(automl, request.task.value, chosen.learners)
        extra: dict[str, Any] = (
            {"eval_method": "cv", "n_splits": split.n_splits}
            if split.n_splits
            else {"eval_method": "holdout", "X_val": split.X_val, "y_val": split.y_val}
        )
        settings["time_budget"] = budget.search_seconds()
        log_event(
            "search.started", budget=round(settings["time_budget"], 1), rows=len(split.X_train)
        )
        fit_until_exit_score(
            automl,
            X_train=split.X_train,
            y_train=split.y_train,
            task=request.task.value,
            estimator_list=list(chosen.learners),
            metric=metric,
            **extra,
            **settings,
        )
        log_event("search.ended", trials=len(log.records), seconds_left=round(budget.left(), 1))
        log.finishing()
        if ensembles_wanted(request) and budget.left() > 0:
            add_vote_ensemble(log, request.task)
        if not request.validation.validation_data:
            refit_tabular(log, automl, every_row or refit_rows.split_rows(split), budget=budget)
        log.held_out = held_out_rows(request, split, test)
        if test is not None:
            score_winners(log, request, test)
    return log.winners()


def read_large_sample(
    request: AutoMLRequest, budget: Budget
) -> tuple[pd.DataFrame, FileRows] | None:
    """A large CSV table's search sample, read without holding the whole table, and its
    rows for the refit (``large_csv``), for a classification or a regression that sets no
    test rows apart from the table (those are drawn from every row); None otherwise."""
    if request.task is Task.FORECASTING or test_size(request) is not None:
        return None
    path = large_csv(request.training_data)
    if path is None:
        return None
    return read_sampled(
        path,
        request.target_column_name,
        list(request.ignored_columns),
        key_columns(request),
        request.task,
        budget.search_seconds,
    )


def held_out_rows(request: AutoMLRequest, split: Split, test: pd.DataFrame | None) -> HeldOut:
    """The rows to show the winner on: the test rows, else a validation table (its models
    are not refitted on it), else every training row (the final models were fitted on
    them all)."""
    target = request.target_column_name
    if test is not None:
        rows = test.dropna(subset=[target])
        return HeldOut(rows.drop(columns=[target]), rows[target], "test")
    if request.validation.validation_data and split.X_val is not None and split.y_val is not None:
        return HeldOut(split.X_val, split.y_val, "validation")
    return HeldOut(split.X_train, split.y_train, "training")  # not copied: a sample will do


def reaches(request: AutoMLRequest, value: float | None) -> bool:
    """Whether a trial's primary metric ``value`` reaches the request's exit score (at or
    above it for a metric to maximize, at or below for one to minimize)."""
    target = request.limits.exit_score
    if target is None or value is None or math.isnan(value):
        return False
    maximize = goal_of(request.metric, request.task) is Goal.MAXIMIZE
    return value >= target if maximize else value <= target


def fit_until_exit_score(automl: Any, **settings: Any) -> None:
    """``automl.fit(**settings)``, ended early when a trial reaches the exit score; its
    median imputer fitted a column at a time (``column_medians``)."""
    try:
        with column_medians():
            automl.fit(**settings)
    except ExitScoreReached as reached:
        log_event("search.exit_score_reached", score=str(reached))


def refit_tabular(
    log: TrialLog, automl: Any, rows: AllRows, *, budget: Budget | None = None
) -> None:
    """Refit the leading FLAML models on every training row (the validation rows or all
    folds included), as Azure AutoML does after cross-validation, best first, while the
    budget allows another refit as long as the longest so far (the first one also the
    time ``rows`` take to read); a model that cannot be refitted, or is not for lack of
    time, keeps its scored fit."""
    state = automl._state
    X_all: Any = None  # made on the first refit: the rows are not read for nothing
    longest = 0.0
    for model in _flaml_models(log):
        needed = max(longest, refit_estimate(automl, model.learner, rows.count))
        if X_all is None:
            needed += rows.read_seconds
        if budget is not None and not budget.allows(needed):
            model.refit_error = NO_TIME_TO_REFIT
            log_event("search.refit_skipped", rows=rows.count, estimate=round(needed, 1))
            continue
        if X_all is None:
            free_memory.release()  # what the search no longer holds, before every row
            X, y = rows.read()
            X_all = state.task.preprocess(X, automl._transformer)
            del X
            y_all = automl._label_transformer.transform(y) if automl._label_transformer else y
            del y
            log_event("search.refit_rows", rows=len(X_all))
        started = time.monotonic()
        try:
            model.estimator.fit(X_all, y_all)
            model.fitted_rows = len(X_all)
        except Exception as exc:  # any learner's own failure: keep the scored fit
            model.refit_error = str(exc)[:300]
        took = time.monotonic() - started
        longest = max(longest, took)
        log_event("search.refitted", rows=len(X_all), seconds=round(took, 1))


def refit_estimate(automl: Any, learner: str | None, rows: int) -> float:
    """Seconds a refit of ``learner``'s best configuration on ``rows`` rows may take:
    FLAML's own estimate, its evaluation time scaled by rows (0 when unknown)."""
    state = automl._search_states.get(learner) if learner else None
    sample_size = getattr(state, "best_config_sample_size", None)
    if state is None or not sample_size:
        return 0.0
    return float(state.time2eval_best) * rows / float(sample_size)


def refit_forecasters(
    log: TrialLog,
    series: Any,
    period: int,
    series_end: pd.Timestamp,
    budget: Budget | None = None,
) -> None:
    """Refit the leading FLAML forecasters on train + holdout (``series``, ending at
    ``series_end``), so their step 1 is the period after the whole series, while time is
    left; a model that cannot be refitted, or is not for lack of time, keeps its holdout
    fit, its steps counted from the end of its training part, and forecasts the same dates
    after ``series_end``."""
    if series is None:
        return
    found: dict[int, FlamlForecaster] = {}
    for _, model in log.winners():
        for part in model.members if isinstance(model, EnsembleForecaster) else [model]:
            if isinstance(part, FlamlForecaster):
                found.setdefault(id(part), part)
    for model in found.values():
        if budget is None or budget.left() > 0:
            model.refitted(series, period, series_end)
        else:
            model.keep_scored_fit(series_end, NO_TIME_TO_REFIT)
            log_event("search.refit_skipped", reason=NO_TIME_TO_REFIT)


def _flaml_models(log: TrialLog) -> list[FlamlModel]:
    """The FLAML models the winners predict with (an ensemble's members), each once."""
    found: dict[int, FlamlModel] = {}
    for _, model in log.winners():
        for part in model.members if isinstance(model, EnsembleModel) else [model]:
            if isinstance(part, FlamlModel):
                found.setdefault(id(part), part)
    return list(found.values())


def _window(series: Any, window: Window) -> Any:
    """FLAML's dataset of ``series`` (train part only) cut at ``window``: trained on the
    rows before its cutoff, tested on its rows."""
    from flaml.automl.time_series.ts_data import TimeSeriesDataset

    rows = series.train_data
    return TimeSeriesDataset(
        rows.iloc[: window.cutoff].reset_index(drop=True),
        time_col=series.time_col,
        target_names=series.target_names,
        time_idx=series.time_idx,
        test_data=rows.iloc[window.cutoff : window.end].reset_index(drop=True),
    )


def _joined(dataset: Any) -> Any:
    from flaml.automl.time_series.ts_data import TimeSeriesDataset

    frame = pd.concat([dataset.train_data, dataset.test_data], ignore_index=True)
    return TimeSeriesDataset(
        frame,
        time_col=dataset.time_col,
        target_names=dataset.target_names,
        time_idx=dataset.time_idx,
    )


def _mean(folds: list[dict[str, float]]) -> dict[str, float]:
    names = set.intersection(*(set(f) for f in folds))
    return {n: float(np.mean([f[n] for f in folds])) for n in sorted(names)}


def _constant(model: Any) -> Any:
    return lambda: model
