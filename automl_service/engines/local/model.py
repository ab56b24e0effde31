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
        if self.label_transformer is not None:
            return np.asarray(
                self.label_transformer.inverse_transform(pd.Series(np.asarray(y).astype(int)))
            )
        return np.asarray(y)

    def _features(self, model_input: pd.DataFrame) -> Any:
        frame = pd.DataFrame(model_input)
        present = [c for c in self.feature_columns if c in frame.columns]
        if present:
            frame = frame[present]
        return self.task.preprocess(frame, self.transformer)


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
