"""Azure AutoML job objects from a request: pure building, no network.

Every option the request schema carries reaches the job: primary metric, limits
(seconds rounded up to the SDK's minutes), training (one ``set_training`` call, since a
second call resets the algorithm lists), featurization, validation / cross-validation /
test data, forecasting settings, compute, experiment, and tags carrying the request id.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ...metrics import Task
from ...request import AutoMLRequest
from ...tags import REQUEST_TAG

#: Tag on the job (and the registered model) naming the request.

#: Turns a data reference from the request into an MLTable input path (see ``data.py``).
DataResolver = Callable[[str, str], str]


def minutes(seconds: int | None) -> int | None:
    """Seconds as whole minutes, rounded up (the SDK takes minutes)."""
    return None if seconds is None else max(1, math.ceil(seconds / 60))


def job_tags(request: AutoMLRequest) -> dict[str, str]:
    """The request's own tags plus the one naming the request."""
    return {**request.tags, REQUEST_TAG: request.id}


def build_automl_job(
    request: AutoMLRequest,
    *,
    compute: str | None = None,
    resolve_data: DataResolver | None = None,
) -> Any:
    """A fresh ``azure.ai.ml`` AutoML job for ``request``, named ``request.job_name``.

    ``compute`` is used when the request names none; with neither, the job runs on
    serverless compute. ``resolve_data(reference, role)`` turns each data reference into
    an MLTable path (default: used as it is).
    """
    from azure.ai.ml import Input, automl
    from azure.ai.ml.constants import AssetTypes

    resolve = resolve_data or (lambda reference, _role: reference)

    def table(reference: str | None, role: str) -> Any:
        if reference is None:
            return None
        return Input(type=AssetTypes.MLTABLE, path=resolve(reference, role))

    validation = request.validation
    common: dict[str, Any] = {
        "training_data": table(request.training_data, "training"),
        "target_column_name": request.target_column_name,
        "primary_metric": request.metric,
        "validation_data": table(validation.validation_data, "validation"),
        "validation_data_size": validation.validation_size,
        "n_cross_validations": validation.n_cross_validations,
        "test_data": table(validation.test_data, "test"),
        "name": request.job_name,
        "experiment_name": request.experiment_name,
        "compute": request.compute or compute,
        "tags": job_tags(request),
        "display_name": request.job_name,
    }
    factories = {
        Task.CLASSIFICATION: automl.classification,
        Task.REGRESSION: automl.regression,
        Task.FORECASTING: automl.forecasting,
    }
    job = factories[request.task](**{k: v for k, v in common.items() if v is not None})

    limits = request.limits
    job.set_limits(
        timeout_minutes=minutes(limits.timeout_seconds),
        trial_timeout_minutes=minutes(limits.trial_timeout_seconds),
        max_trials=limits.max_trials,
        max_concurrent_trials=limits.max_concurrent_trials,
        enable_early_termination=limits.enable_early_termination,
    )
    training = request.training
    job.set_training(
        allowed_training_algorithms=training.allowed_algorithms,
        blocked_training_algorithms=training.blocked_algorithms,
        enable_stack_ensemble=training.enable_stack_ensemble,
        enable_vote_ensemble=training.enable_vote_ensemble,
        enable_onnx_compatible_models=training.enable_onnx_compatible_models,
    )
    job.set_featurization(mode=request.featurization)
    if request.task is Task.FORECASTING and request.forecasting is not None:
        fc = request.forecasting
        job.set_forecast_settings(
            time_column_name=fc.time_column_name,
            forecast_horizon=fc.forecast_horizon,
            time_series_id_column_names=fc.time_series_id_column_names or None,
            frequency=fc.frequency,
            seasonality=fc.seasonality,
        )
    return job
