"""One training attempt: data, split, baselines, the FLAML search, the winners' models.

Blocking; runs inside the trainer process. Raises PermanentError for a request that can
never train (missing column, unknown algorithm, unusable series); other exceptions are
bugs or environment faults. Either way the caller ends the parent run FAILED.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...datasets import load_table
from ...errors import PermanentError
from ...evaluate import compute_metrics
from ...metrics import Task, as_loss, goal_of
from ...request import AutoMLRequest
from ...runs import RunRecord
from . import algorithms, baselines
from .ensemble import EnsembleModel, add_vote_ensemble, ensembles_wanted
from .model import BaselineModel, FlamlModel
from .predictions import Fold
from .trials import TrialLog

SEED = 42
DEFAULT_VALIDATION_SIZE = 0.2
#: Without a validation option, tables smaller than this are scored by k-fold
#: cross-validation (as Azure AutoML does): a holdout of a few dozen rows picks the
#: luckiest of hundreds of trials, not the best. Larger tables use a holdout.
CV_BELOW_ROWS = 20_000
DEFAULT_FOLDS = 5


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


def check_columns(frame: pd.DataFrame, needed: list[str], what: str) -> None:
    """PermanentError naming the missing columns and the ones present."""
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise PermanentError(
            f"{what} column(s) {', '.join(map(repr, missing))} not in the data; "
            f"columns present: {', '.join(map(str, frame.columns))}"
        )


def split_tabular(request: AutoMLRequest, frame: pd.DataFrame) -> Split:
    """Train/validation split for classification and regression (fixed seed)."""
    from sklearn.model_selection import train_test_split

    target = request.target_column_name
    frame = frame.dropna(subset=[target])
    X, y = frame.drop(columns=[target]), frame[target]
    validation = request.validation
    if validation.n_cross_validations:
        return Split(X, y, None, None, validation.n_cross_validations)
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


def split_series(request: AutoMLRequest, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and holdout tables for forecasting: the last ``horizon`` points are held out."""
    assert request.forecasting is not None
    fc = request.forecasting
    if fc.time_series_id_column_names:
        raise PermanentError("several time series in one table are not supported locally")
    time_col, target = fc.time_column_name, request.target_column_name
    frame = frame.copy()
    frame[time_col] = pd.to_datetime(frame[time_col])
    frame = frame.dropna(subset=[target]).sort_values(time_col).reset_index(drop=True)
    if request.validation.validation_data:
        holdout = load_table(request.validation.validation_data)
        check_columns(holdout, [time_col, target], "validation")
        holdout = holdout.copy()
        holdout[time_col] = pd.to_datetime(holdout[time_col])
        return frame, holdout.sort_values(time_col).reset_index(drop=True)
    horizon = fc.forecast_horizon
    if len(frame) < 2 * horizon + 2:
        raise PermanentError(
            f"series has {len(frame)} points: too short for a holdout of {horizon}"
        )
    return frame.iloc[:-horizon].reset_index(drop=True), frame.iloc[-horizon:].reset_index(
        drop=True
    )


def series_frequency(request: AutoMLRequest, times: pd.Series) -> str:
    assert request.forecasting is not None
    if request.forecasting.frequency:
        return request.forecasting.frequency
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(pd.DatetimeIndex(times))
    if freq is None:
        raise PermanentError("the time column has no regular frequency; give 'frequency'")
    return str(getattr(freq, "freqstr", freq))


def run_baselines(
    request: AutoMLRequest,
    log: TrialLog,
    kinds: tuple[str, ...],
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    freq: str,
) -> None:
    """Score each baseline on the holdout as a child run; skip those that cannot fit."""
    assert request.forecasting is not None
    time_col, target = request.forecasting.time_column_name, request.target_column_name
    season = baselines.season_length(freq, request.forecasting.seasonality)
    history = train[target].to_numpy(dtype=float)
    last_time = pd.Timestamp(train[time_col].iloc[-1])
    full_history = np.concatenate([history, holdout[target].to_numpy(dtype=float)])
    full_last_time = pd.Timestamp(holdout[time_col].iloc[-1])
    for kind in kinds:
        model = BaselineModel(kind, history, last_time, freq, time_col, season)
        try:
            predicted = model.predict(None, holdout[[time_col]])
        except (ValueError, np.linalg.LinAlgError):
            continue
        metrics = compute_metrics(Task.FORECASTING, holdout[target].to_numpy(), predicted)
        # The logged model forecasts after the whole series, holdout included.
        final = BaselineModel(kind, full_history, full_last_time, freq, time_col, season)
        log.log(kind, {"season": season, "freq": freq}, metrics, _constant(final))


class FlamlMetric:
    """FLAML's custom ``metric``: scores a trial, logs it as a child run, returns the loss."""

    def __init__(
        self,
        request: AutoMLRequest,
        log: TrialLog,
        automl: Any,
        features: list[str],
        n_splits: int | None = None,
    ):
        self.request = request
        self.n_splits = n_splits
        self.log = log
        self.automl = automl
        self.features = features
        self.goal = goal_of(request.metric, request.task)
        self.folds: dict[str, list[Fold]] = {}
        #: Forecasting: train and holdout together, to refit the logged models on.
        self.full_series: Any = None

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
        fold = self._predict(X_val, y_val, estimator, labels)
        params = dict(config or {})
        algorithm = algorithms.azure_name(self.request.task, self._learner(estimator))
        if self.n_splits:
            # Each fold returns its primary metric for FLAML's loss; the trial's canonical
            # metrics are computed once, on the pooled out-of-fold predictions.
            loss = self._loss(fold.metrics(self.request.task, names=(self.request.metric,)))
            key = algorithm + repr(sorted(params.items()))
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
        self.log.log(algorithm, params, metrics, lambda: self._model(estimator), predictions=pooled)
        return loss, {"pred_time": 0.0}

    def _loss(self, metrics: dict[str, float]) -> float:
        return as_loss(metrics.get(self.request.metric, math.nan), self.goal)

    def _learner(self, estimator: Any) -> str:
        for name, cls in self.automl._state.learner_classes.items():
            if type(estimator) is cls:
                return str(name)
        return type(estimator).__name__

    def _predict(self, X_val: Any, y_val: Any, estimator: Any, labels: Any) -> Fold:
        task = self.request.task
        if task is Task.FORECASTING:
            if self.full_series is None:
                self.full_series = _joined(X_val)
            y_true = X_val.test_data[X_val.target_names[0]].to_numpy()
            return Fold(y_true, np.asarray(estimator.predict(X_val)))
        y_pred = np.asarray(estimator.predict(X_val))
        if task is Task.CLASSIFICATION:
            proba = np.asarray(estimator.predict_proba(X_val))
            model = getattr(estimator, "_model", None)
            classes = getattr(model, "classes_", None)
            if classes is None:
                classes = labels if labels is not None else np.unique(np.asarray(y_val))
            return Fold(np.asarray(y_val), y_pred, proba, list(classes))
        return Fold(np.asarray(y_val), y_pred)

    def _model(self, estimator: Any) -> FlamlModel:
        state = self.automl._state
        return FlamlModel(
            copy.deepcopy(estimator),
            state.task,
            self.automl._transformer,
            self.automl._label_transformer,
            self.features,
        )


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


def search(request: AutoMLRequest, log: TrialLog) -> list[tuple[RunRecord, Any]]:
    """Run baselines and the FLAML search; return the leaders (run record, pyfunc model)."""
    from flaml.automl import AutoML

    frame = load_table(request.training_data)
    target = request.target_column_name
    check_columns(frame, [target], "target")
    chosen = algorithms.plan(
        request.task, request.training.allowed_algorithms, request.training.blocked_algorithms
    )
    limits = request.limits
    settings: dict[str, Any] = {
        "time_budget": limits.timeout_seconds,
        "early_stop": limits.enable_early_termination,
        "n_jobs": limits.max_concurrent_trials,
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
        time_col = request.forecasting.time_column_name
        check_columns(frame, [time_col], "time")
        train, holdout = split_series(request, frame)
        freq = series_frequency(request, train[time_col])
        run_baselines(request, log, chosen.baselines, train, holdout, freq)
        features = [c for c in train.columns if c != target]
        check_columns(holdout, features, "holdout")
        if chosen.learners:
            metric = FlamlMetric(request, log, automl, features)
            automl.fit(
                X_train=train[features],
                y_train=train[target],
                X_val=holdout[features],
                y_val=holdout[target],
                task="ts_forecast",
                period=len(holdout),
                time_col=time_col,
                estimator_list=list(chosen.learners),
                metric=metric,
                **settings,
            )
            refit_forecasters(log, metric.full_series)
    else:
        split = split_tabular(request, frame)
        features = list(split.X_train.columns)
        metric = FlamlMetric(request, log, automl, features, split.n_splits)
        if "lgbm" in chosen.learners:
            # Start LightGBM's search at LightGBM's own defaults, so the candidates always
            # include what a user gets with `LGBMClassifier()` by hand.
            settings["starting_points"] = {"lgbm": LIGHTGBM_DEFAULTS}
        extra: dict[str, Any] = (
            {"eval_method": "cv", "n_splits": split.n_splits}
            if split.n_splits
            else {"eval_method": "holdout", "X_val": split.X_val, "y_val": split.y_val}
        )
        automl.fit(
            X_train=split.X_train,
            y_train=split.y_train,
            task=request.task.value,
            estimator_list=list(chosen.learners),
            metric=metric,
            **extra,
            **settings,
        )
        if ensembles_wanted(request):
            add_vote_ensemble(log, request.task)
        if not request.validation.validation_data:
            refit_tabular(log, automl, *split.all_rows())
    return log.winners()


def refit_tabular(log: TrialLog, automl: Any, X: pd.DataFrame, y: pd.Series) -> None:
    """Refit the leading FLAML models on every training row (the validation rows or all
    folds included), as Azure AutoML does after cross-validation; a model that cannot be
    refitted keeps its scored fit."""
    state = automl._state
    X_all = state.task.preprocess(X, automl._transformer)
    y_all = automl._label_transformer.transform(y) if automl._label_transformer else y
    for model in _flaml_models(log):
        try:
            model.estimator.fit(X_all, y_all)
            model.fitted_rows = len(X_all)
        except Exception as exc:  # any learner's own failure: keep the scored fit
            model.refit_error = str(exc)[:300]


def refit_forecasters(log: TrialLog, series: Any) -> None:
    """Refit the leading FLAML forecasters on train + holdout, so they forecast after the
    whole series; a model that cannot be refitted keeps its holdout fit."""
    if series is None:
        return
    for model in _flaml_models(log):
        try:
            model.estimator.fit(series)
        except Exception as exc:  # any learner's own failure: keep the scored fit
            model.refit_error = str(exc)[:300]


def _flaml_models(log: TrialLog) -> list[FlamlModel]:
    """The FLAML models the winners predict with (an ensemble's members), each once."""
    found: dict[int, FlamlModel] = {}
    for _, model in log.winners():
        for part in model.members if isinstance(model, EnsembleModel) else [model]:
            if isinstance(part, FlamlModel):
                found.setdefault(id(part), part)
    return list(found.values())


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
