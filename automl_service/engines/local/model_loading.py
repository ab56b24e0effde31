"""Registered models as the local endpoints and batch scoring load them: the pyfunc model
of a version, its input columns, and a few rows to check that it scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from ...errors import PermanentError
from ...logs import get_logger
from ...request import AutoMLRequest
from .mlflow_errors import mlflow_errors

log = get_logger(__name__)

#: Rows of the training table scored before a deployment takes traffic.
SAMPLE_ROWS = 5


def load_registered(tracking_uri: str, name: str, version: str) -> Any:
    """The pyfunc model of registered ``name`` version ``version`` in the store at
    ``tracking_uri`` (never MLflow's process-wide one). Blocking. Raises PermanentError
    when the version does not exist or cannot be loaded, TransientError when the store is
    busy or unreachable."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with mlflow_errors(f"finding model {name} version {version}"):
        source = client.get_model_version_download_uri(name, version)
    return load_model_at(source, f"model {name} version {version}")


def load_model_at(source: str | Path, label: str) -> Any:
    """The pyfunc model at ``source`` (a URI or an MLflow model folder), ``label`` naming
    it in errors. Raises PermanentError when it cannot be loaded."""
    try:
        return mlflow.pyfunc.load_model(str(source))
    except MlflowException as exc:
        raise PermanentError(f"{label} cannot be loaded: {exc}") from exc
    except (ImportError, AttributeError, ValueError, TypeError, OSError) as exc:
        raise PermanentError(f"{label} cannot be loaded: {type(exc).__name__}: {exc}") from exc


def named_inputs(model: Any) -> Any:
    """The input schema of a model's signature when it names its columns, else None."""
    try:
        schema = model.metadata.get_input_schema()
    except AttributeError:
        return None
    if schema is None or not schema.has_input_names():
        return None
    return schema


def input_columns(model: Any) -> tuple[str, ...]:
    """The named input columns of a model's signature, or () when it has none."""
    schema = named_inputs(model)
    return () if schema is None else tuple(str(name) for name in schema.input_names())


def model_columns(model: Any) -> tuple[str, ...]:
    """The input columns a loaded pyfunc model needs: its signature's, else its own
    feature columns (an ensemble's first member's), else () when it names none."""
    named = input_columns(model)
    if named:
        return named
    try:
        inner = model.unwrap_python_model()
    except Exception:  # not a python model: nothing more to learn
        return ()
    members = getattr(inner, "members", None)
    source = members[0] if members else inner
    return tuple(str(c) for c in getattr(source, "feature_columns", None) or ())


def input_example(model: Any) -> pd.DataFrame | None:
    """The model's saved input example as a table, or None."""
    example = getattr(model, "input_example", None)
    if example is None:
        return None
    try:
        frame = pd.DataFrame(example)
    except (ValueError, TypeError):
        return None
    return frame if len(frame) else None


def training_sample(request: AutoMLRequest) -> pd.DataFrame | None:
    """The first rows of the request's training table without the target, or None when it
    cannot be read. Forecasting models score future times, so they get none."""
    from .datasets import load_part

    try:
        table = load_part(request.training_data, rows=SAMPLE_ROWS)
    except Exception as exc:  # a sample is a bonus: without it the check only loads
        log.info("endpoint.no_sample", reason=str(exc))
        return None
    left_out = [request.target_column_name, *request.ignored_columns]
    features = table.drop(columns=left_out, errors="ignore")
    return features.head(SAMPLE_ROWS)
