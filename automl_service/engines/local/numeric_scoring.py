"""Scoring rows of numbers in numpy, for a FLAML model whose features are all numbers.

FLAML's transform of such a table only fills missing values with the medians it learned;
its pandas and scikit-learn steps took 3.5 ms of a 5.5 ms single-row predict, so
``NumericScorer`` does it in numpy with the same result. A LightGBM learner is then asked
through its booster, as LightGBM's own scikit-learn ``predict_proba`` does after its
input checks and parameter handling (most of a single-row call); any other learner gets
the table its ``predict_proba`` (or ``predict``) always got. Whenever the transformer does
anything else (text, categories, dates, forecasts) there is no scorer and FLAML's own
transform runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

Estimate = Callable[[np.ndarray[Any, Any]], Any]


@dataclass(frozen=True)
class NumericScorer:
    """A model's estimator over its numeric features ``columns``, in numpy: the class
    probabilities of a classifier, or the values of a regressor."""

    columns: tuple[str, ...]
    medians: np.ndarray[Any, Any]
    estimate: Estimate

    def values(self, frame: pd.DataFrame) -> np.ndarray[Any, Any] | None:
        """``frame``'s numbers as float64, or None unless its columns are exactly
        ``columns``, in order, and all of numbers (then FLAML's transform runs)."""
        if tuple(frame.columns) != self.columns:
            return None
        if not all(dtype.kind in "biuf" for dtype in frame.dtypes):
            return None
        values: np.ndarray[Any, Any] = frame.to_numpy(dtype=np.float64)
        return values

    def features(self, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """``values`` with missing numbers filled with the learned medians."""
        missing = np.isnan(values)
        return np.where(missing, self.medians, values) if missing.any() else values

    def __call__(self, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The estimator's answer (probabilities or values) for rows of ``values``."""
        return np.asarray(self.estimate(self.features(values)))


def numeric_scorer(
    estimator: Any, transformer: Any, task: Any, *, classify: bool
) -> NumericScorer | None:
    """The scorer of a fitted FLAML ``estimator`` behind ``transformer``, or None when the
    transformer does more than fill missing numbers with medians."""
    imputer = median_imputer(transformer, task)
    if imputer is None:
        return None
    columns, medians = imputer
    return NumericScorer(tuple(columns), medians, _estimate(estimator, columns, classify))


def numeric_features(frame: pd.DataFrame, transformer: Any, task: Any) -> pd.DataFrame | None:
    """FLAML's own transform of ``frame``, done in numpy, for a table of the fitted
    numeric columns; None whenever FLAML's own transform has to run."""
    imputer = median_imputer(transformer, task)
    if imputer is None:
        return None
    columns, medians = imputer
    scorer = NumericScorer(tuple(columns), medians, lambda values: values)
    values = scorer.values(frame)
    if values is None:
        return None
    return pd.DataFrame(scorer.features(values), columns=columns, index=frame.index)


def median_imputer(transformer: Any, task: Any) -> tuple[list[str], Any] | None:
    """(columns, medians) when ``transformer`` is FLAML's DataTransformer doing nothing but
    fill missing numbers with medians; None otherwise."""
    from sklearn.impute import SimpleImputer

    try:
        if task.is_ts_forecast() or task.is_nlp():
            return None
        if transformer._cat_columns or transformer._datetime_columns:
            return None
        ((_, step, columns),) = transformer.transformer.transformers_
    except (AttributeError, TypeError, ValueError):
        return None
    if not isinstance(step, SimpleImputer) or step.strategy != "median":
        return None
    if list(columns) != list(transformer._num_columns):
        return None
    return list(columns), np.asarray(step.statistics_, dtype=np.float64)


def _estimate(estimator: Any, columns: list[str], classify: bool) -> Estimate:
    booster = _lightgbm(estimator, classify)
    if booster is not None:
        return booster
    if classify:
        return lambda values: estimator.predict_proba(pd.DataFrame(values, columns=columns))
    return lambda values: estimator.predict(pd.DataFrame(values, columns=columns))


def _lightgbm(estimator: Any, classify: bool) -> Estimate | None:
    """LightGBM's ``predict_proba`` (or ``predict``) of FLAML's LightGBM learner, straight
    from its booster; None for any other learner, or one with its own objective function
    (LightGBM answers raw scores then)."""
    from flaml.automl.model import LGBMEstimator
    from lightgbm import LGBMClassifier, LGBMRegressor

    model = getattr(estimator, "_model", None)
    wanted = LGBMClassifier if classify else LGBMRegressor
    if type(estimator) is not LGBMEstimator or type(model) is not wanted:
        return None
    if callable(getattr(model, "objective", None)):
        return None
    # The booster's own thread count and quiet, as its training set them.
    trained = model.booster_.params
    params = {"num_threads": trained.get("num_threads", 0), "verbose": -1}

    def predict(values: np.ndarray[Any, Any]) -> Any:
        result = np.asarray(model.booster_.predict(values, **params))
        if classify and result.ndim == 1:  # two classes: the second's probability
            return np.column_stack((1.0 - result, result))
        return result

    return predict
