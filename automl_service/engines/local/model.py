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

from .numeric_scoring import NumericScorer, numeric_scorer
from .numeric_scoring import numeric_features as numeric_features
from .probabilities import Scored, decide, labelled, normalized


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
        scored = self.scored(model_input)
        if scored.proba is None:
            return scored.values
        index = model_input.index if isinstance(model_input, pd.DataFrame) else None
        return labelled(scored.values, scored.proba, list(scored.classes), index)

    @property
    def classifies(self) -> bool:
        """Whether the model answers classes (and so probabilities)."""
        return bool(self.task.is_classification())

    def numeric_scorer(self) -> NumericScorer | None:
        """The model's estimator over its numeric features in numpy (``numeric_scoring``),
        or None when its features need FLAML's own transform."""
        return numeric_scorer(self.estimator, self.transformer, self.task, classify=self.classifies)

    def scored(self, model_input: pd.DataFrame) -> Scored:
        """The labels and probabilities, or values, of ``model_input``'s rows."""
        raw = self._estimate(model_input)
        return self._classified(raw) if self.classifies else Scored(self._values(raw))

    def scored_numbers(self, values: np.ndarray[Any, Any], scorer: NumericScorer) -> Scored:
        """``scored`` for rows of numbers in the order of ``scorer.columns`` (``scorer``
        from ``numeric_scorer``), without a table."""
        raw = scorer(values)
        return self._classified(raw) if self.classifies else Scored(self._values(raw))

    def predict_proba(self, model_input: pd.DataFrame) -> tuple[Any, Any]:
        """Class probabilities, and the estimator's (encoded) class of each column."""
        proba = self._estimate(model_input)
        return proba, self._classes(proba)

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

    def _estimate(self, model_input: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The estimator's probabilities (classifier) or values for ``model_input``."""
        frame = pd.DataFrame(model_input)
        present = [c for c in self.feature_columns if c in frame.columns]
        if present:
            frame = frame[present]
        scorer = self.numeric_scorer()
        values = scorer.values(frame) if scorer is not None else None
        if scorer is not None and values is not None:
            return scorer(values)
        features = self.task.preprocess(frame, self.transformer)
        if self.classifies:
            return np.asarray(self.estimator.predict_proba(features))
        return np.asarray(self.estimator.predict(features))

    def _classes(self, proba: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        classes = getattr(getattr(self.estimator, "_model", None), "classes_", None)
        if classes is None:
            classes = np.arange(proba.shape[1])
        return np.asarray(classes)

    def _classified(self, proba: np.ndarray[Any, Any]) -> Scored:
        classes = self._classes(proba)
        threshold = getattr(self, "decision_threshold", None)  # older pickles lack it
        labels = self.decode(decide(proba, classes, threshold))
        return Scored(labels, normalized(proba), tuple(self.decode(classes)))

    def _values(self, y: np.ndarray[Any, Any]) -> Any:
        if y.ndim > 1:
            y = y.ravel()
        return self.decode(y)


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
