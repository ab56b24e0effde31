"""MLflow pyfunc wrappers of tabular models, and how every trial model is logged.

``mlflow.pyfunc.load_model(uri).predict(df)`` takes raw feature columns and returns values
(regression) or, for a classifier, the label and one probability column per class (see
``probabilities``). Forecasters are in ``forecasters`` (``panel_forecasters`` for many
series): they are logged with their input signature (the time column and any exogenous or
series id columns) and an input example.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from .probabilities import decide, labelled, normalized


class FlamlModel(PythonModel):
    """A fitted FLAML estimator plus FLAML's data and label transformers."""

    def __init__(
        self,
        estimator: Any,
        task: Any,
        transformer: Any,
        label_transformer: Any,
        feature_columns: list[str],
    ) -> None:
        self.estimator = estimator
        self.task = task
        self.transformer = transformer
        self.label_transformer = label_transformer
        self.feature_columns = feature_columns
        self.refit_error: str | None = None
        #: Rows of the final fit, when refitted on every training row.
        self.fitted_rows: int | None = None
        #: FLAML's name for the learner (``lgbm``), when the search made the model.
        self.learner: str | None = None
        #: Two classes: the positive class's probability from which it is the label.
        self.decision_threshold: float | None = None

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        """Values, or for a classifier the label and class probabilities (a table)."""
        if self.classifies:
            proba, classes = self.predict_proba(model_input)
            threshold = getattr(self, "decision_threshold", None)  # older pickles lack it
            labels = self.decode(decide(proba, classes, threshold))
            index = model_input.index if isinstance(model_input, pd.DataFrame) else None
            return labelled(labels, normalized(proba), list(self.decode(classes)), index)
        y = np.asarray(self.estimator.predict(self._features(model_input)))
        if y.ndim > 1:
            y = y.ravel()
        return self.decode(y)

    @property
    def classifies(self) -> bool:
        """Whether the model answers classes (and so probabilities)."""
        return bool(self.task.is_classification())

    def predict_proba(self, model_input: pd.DataFrame) -> tuple[Any, Any]:
        """Class probabilities, and the estimator's (encoded) class of each column."""
        proba = np.asarray(self.estimator.predict_proba(self._features(model_input)))
        classes = getattr(getattr(self.estimator, "_model", None), "classes_", None)
        if classes is None:
            classes = np.arange(proba.shape[1])
        return proba, np.asarray(classes)

    def decode(self, y: Any) -> Any:
        """Encoded labels back to the training data's labels (values pass through)."""
        from sklearn.preprocessing import LabelEncoder

        if self.label_transformer is None:
            return np.asarray(y)
        codes = np.asarray(y).astype(int)
        classes = getattr(self.label_transformer, "classes_", None)
        if isinstance(self.label_transformer, LabelEncoder) and classes is not None:
            if codes.size and (codes.min() < 0 or codes.max() >= len(classes)):
                raise ValueError(f"y contains labels the model does not know: {codes}")
            return np.asarray(classes)[codes]  # inverse_transform without its checks
        return np.asarray(self.label_transformer.inverse_transform(pd.Series(codes)))

    def _features(self, model_input: pd.DataFrame) -> Any:
        frame = pd.DataFrame(model_input)
        present = [c for c in self.feature_columns if c in frame.columns]
        if present:
            frame = frame[present]
        fast = numeric_features(frame, self.transformer, self.task)
        return fast if fast is not None else self.task.preprocess(frame, self.transformer)


def numeric_features(frame: pd.DataFrame, transformer: Any, task: Any) -> pd.DataFrame | None:
    """FLAML's own transform of ``frame``, done in numpy, for a table whose features are
    all numbers (the common case): FLAML then only fills missing values with the medians
    it learned, and its pandas and scikit-learn steps took 3.5 ms of a 5.5 ms single-row
    predict. None whenever the transformer does anything else (text, categories, dates,
    forecasts) or a column is not numeric: FLAML's own transform runs then."""
    imputer = _median_imputer(transformer, task)
    if imputer is None:
        return None
    columns, medians = imputer
    if list(frame.columns) != columns or not all(dtype.kind in "biuf" for dtype in frame.dtypes):
        return None
    values = frame.to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    if missing.any():
        values = np.where(missing, medians, values)
    return pd.DataFrame(values, columns=columns, index=frame.index)


def _median_imputer(transformer: Any, task: Any) -> tuple[list[str], Any] | None:
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


def requirements() -> list[str]:
    """Pinned requirements of a logged model (skips MLflow's slow inference)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("mlflow", "flaml", "lightgbm", "scikit-learn", "statsmodels", "pandas"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pins


def log_pyfunc(
    tracking_uri: str, run_id: str, model: PythonModel, end_time_ms: int | None = None
) -> None:
    """Log ``model`` as the run's "model" artifact (cloudpickle serialization); a
    forecaster with its input signature and input example.

    The run keeps its status and, when given, its end time (ties in selection use it).
    """
    from .forecasters import Forecaster
    from .panel_forecasters import PanelForecaster

    described: dict[str, Any] = {}
    if isinstance(model, Forecaster | PanelForecaster):
        described = {"signature": model.signature(), "input_example": model.example()}
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_id=run_id, log_system_metrics=False):
        mlflow.pyfunc.log_model(
            name="model", python_model=model, pip_requirements=requirements(), **described
        )
    if end_time_ms is not None:
        mlflow.MlflowClient(tracking_uri=tracking_uri).set_terminated(
            run_id, "FINISHED", end_time=end_time_ms
        )
