"""The request's test rows: set apart before training, scored once the search is done.

``validation.test_data`` names a table; ``validation.test_data_size`` holds out that
fraction of the training rows (stratified for classification) before anything else sees
them; a request that deploys "only if better" without test rows of its own holds out
``COMPARISON_SIZE``, on which the deployer then scores the new model and the live one.
The search's winners (the leader of each objective, so whichever run the worker then
selects) are scored on them with every canonical metric, logged on their runs as
``test_<metric>``: the registered model is the very object scored.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ...errors import PermanentError
from ...logs import get_logger
from ...metrics import Task
from ...request import AutoMLRequest
from ...tags import TEST_METRIC_PREFIX
from .datasets import load_table
from .evaluate import compute_metrics
from .model_loading import model_columns
from .probabilities import split_output
from .table_checks import check_columns
from .trials import TrialLog

SEED = 42
#: Rows held out to compare a new model with the live one ("only if better").
COMPARISON_SIZE = 0.2


def test_size(request: AutoMLRequest) -> float | None:
    """The share of rows held out: the request's ``test_data_size``, or with "only if
    better" and no test rows of its own ``COMPARISON_SIZE``, so that the new model and the
    live one can be scored on the same rows (tables only)."""
    validation = request.validation
    if validation.test_data_size is not None or validation.test_data is not None:
        return validation.test_data_size
    compares = request.deployment is not None and request.deployment.only_if_better
    return COMPARISON_SIZE if compares and request.task is not Task.FORECASTING else None


def split_off_test(
    request: AutoMLRequest, frame: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(the rows to train on, the test rows or None)."""
    validation = request.validation
    if validation.test_data is not None:
        test = load_table(validation.test_data)
        test = test.drop(columns=request.ignored_columns, errors="ignore")
        check_columns(test, list(frame.columns), "test")
        return frame, test[list(frame.columns)]
    size = test_size(request)
    if size is None:
        return frame, None
    target = frame[request.target_column_name]
    classes = request.task is Task.CLASSIFICATION and target.value_counts().min() >= 2
    try:
        train, test = train_test_split(
            frame,
            test_size=size,
            random_state=SEED,
            stratify=target if classes else None,
        )
    except ValueError as exc:  # too few rows for the fraction
        raise PermanentError(f"validation.test_data_size: {exc}") from None
    return train, test


def refuse_for_forecasts(request: AutoMLRequest) -> None:
    validation = request.validation
    if validation.test_data is not None or validation.test_data_size is not None:
        raise PermanentError(
            "test rows are not scored locally for forecasting; drop validation.test_data "
            "and test_data_size (the backtest windows score every candidate), or use the "
            "azure backend"
        )


def evaluation_rows(request: AutoMLRequest) -> tuple[pd.DataFrame, pd.Series] | None:
    """The request's test rows (features, target) as the trainer set them apart: the same
    table read and split the same way. None for forecasts or without test rows."""
    if request.task is Task.FORECASTING:
        return None
    frame = load_table(request.training_data)
    frame = frame.drop(columns=request.ignored_columns, errors="ignore")
    _, test = split_off_test(request, frame)
    if test is None:
        return None
    return features_and_target(test, request.target_column_name)


def features_and_target(test: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """(features, target) of test rows, the rows without a target value left out."""
    test = test.dropna(subset=[target])
    return test.drop(columns=[target]), test[target]


def score(
    predict: Callable[[pd.DataFrame], Any], task: Task, X: pd.DataFrame, y: pd.Series
) -> dict[str, float]:
    """Every canonical metric of the answers ``predict`` gives for ``X``, against ``y``."""
    return score_output(predict(X), task, y)


def score_or_error(
    model: Any, task: Task, X: pd.DataFrame, y: pd.Series
) -> dict[str, float] | Exception:
    """``score`` of a loaded pyfunc ``model`` on ``X``, or what stops it: an input column
    it needs that ``X`` lacks (named), else what its ``predict`` raised. For a live model
    that newer rows may have outgrown."""
    missing = [c for c in model_columns(model) if c not in X.columns]
    if missing:
        return PermanentError(f"these rows lack its input column(s) {', '.join(missing)}")
    try:
        return score(model.predict, task, X, y)
    except Exception as exc:  # a model that cannot score these rows
        return exc


def score_output(
    output: Any, task: Task, y: Any, names: Collection[str] | None = None
) -> dict[str, float]:
    """Every canonical metric (or only ``names``) of a model's ``output`` against ``y``."""
    if task is not Task.CLASSIFICATION:
        return compute_metrics(
            task, np.asarray(y, dtype=float), np.asarray(output, dtype=float), names=names
        )
    labels, proba = split_output(output)
    # Probability columns are named by the classes' text: compare labels as text too.
    return compute_metrics(
        task,
        np.asarray(y).astype(str),
        np.asarray(labels).astype(str),
        None if proba is None else proba.to_numpy(dtype=float),
        None if proba is None else [str(c) for c in proba.columns],
        names,
    )


def score_winners(log: TrialLog, request: AutoMLRequest, test: pd.DataFrame) -> None:
    """Score each winner on the test rows and log the metrics on its run."""
    from mlflow.entities import Metric

    X, y = features_and_target(test, request.target_column_name)
    if y.empty:
        raise PermanentError("the test rows have no target values")
    now = int(time.time() * 1000)
    for record, model in log.winners():
        metrics = score(functools.partial(model.predict, None), request.task, X, y)
        named = [Metric(TEST_METRIC_PREFIX + k, v, now, 0) for k, v in metrics.items()]
        log.client.log_batch(record.run_id, metrics=named)
        get_logger("automl_service.trainer").info(
            "search.test_scored", run_id=record.run_id, rows=len(y),
            **{request.metric: metrics.get(request.metric)},
        )  # fmt: skip
