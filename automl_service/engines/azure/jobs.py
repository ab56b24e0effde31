"""Azure AutoML job objects from a request: pure building, no network.

Every option the request schema carries reaches the job through the SDK's own classes and
setters, so the body sent is the one the SDK's YAML loader sends for the same settings:
primary metric, limits (seconds rounded up to the SDK's minutes), training (one
``set_training`` call, since a second call resets the algorithm lists), featurization (custom
column purposes, transformer parameters, blocked transformers), validation /
cross-validation / test data, forecasting settings, compute (``azureml:`` prefix stripped,
as the YAML loader does) or serverless resources, description, log verbosity, experiment,
and tags carrying the request id. Settings the request leaves unset are not sent, so Azure's
defaults apply.
"""

from __future__ import annotations

import math
from typing import Any

from ...errors import PermanentError
from ...metrics import Task
from ...request import AutoMLRequest, Featurization
from ...tags import REQUEST_TAG
from .data import DataResolver, as_given

#: Tag on the job (and the registered model) naming the request.

#: Turns a data reference from the request into an MLTable input path (see ``data.py``).


def minutes(seconds: int | None) -> int | None:
    """Seconds as whole minutes, rounded up (the SDK takes minutes)."""
    return None if seconds is None else max(1, math.ceil(seconds / 60))


def job_tags(request: AutoMLRequest) -> dict[str, str]:
    """The request's own tags plus the one naming the request."""
    return {**request.tags, REQUEST_TAG: request.id}


def compute_name(request: AutoMLRequest, default: str | None) -> str | None:
    """The compute the job runs on: the request's, else ``default`` unless the request asks
    for serverless ``resources``; ``azureml:cpu-cluster`` is ``cpu-cluster``, as the SDK's
    YAML loader reads it."""
    name = request.compute or (None if request.resources else default)
    return name.removeprefix("azureml:") if name else None


def build_automl_job(
    request: AutoMLRequest,
    *,
    compute: str | None = None,
    resolve_data: DataResolver | None = None,
) -> Any:
    """A fresh ``azure.ai.ml`` AutoML job for ``request``, named ``request.job_name``.

    ``compute`` is used when the request names none; with neither, the job runs on
    serverless compute. ``resolve_data(reference, role, ignored_columns)`` turns each data
    reference into an MLTable path (default: used as it is, refusing ignored columns).
    Raises PermanentError for a setting only the local backend applies
    (``training.decision_threshold`` or ``decision_threshold_metric``), rather than
    dropping it.
    """
    if request.forecasting is not None and request.forecasting.forecast_quantiles:
        raise PermanentError(
            "forecasting.forecast_quantiles is applied by the local backend only; an Azure "
            "AutoML forecasting model gives quantiles through its forecast_quantiles method "
            "when it scores: drop it"
        )
    if request.training.thresholded:
        field = (
            "decision_threshold"
            if request.training.decision_threshold is not None
            else "decision_threshold_metric"
        )
        raise PermanentError(
            f"training.{field} is applied by the local backend only; Azure AutoML "
            "models answer with the likeliest class: drop it, or apply a threshold to "
            "the returned probabilities"
        )
    from azure.ai.ml import Input, automl
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import JobResourceConfiguration

    resolve = resolve_data or as_given

    def table(reference: str | None, role: str) -> Any:
        if reference is None:
            return None
        path = resolve(reference, role, request.ignored_columns)
        return Input(type=AssetTypes.MLTABLE, path=path)

    validation = request.validation
    common: dict[str, Any] = {
        "training_data": table(request.training_data, "training"),
        "target_column_name": request.target_column_name,
        "primary_metric": request.metric,
        "validation_data": table(validation.validation_data, "validation"),
        "validation_data_size": validation.validation_size,
        "n_cross_validations": validation.n_cross_validations,
        "test_data": table(validation.test_data, "test"),
        "test_data_size": validation.test_data_size,
        "name": request.job_name,
        "experiment_name": request.experiment_name,
        "compute": compute_name(request, compute),
        "tags": job_tags(request),
        "display_name": request.display_name or request.job_name,
        "description": request.description,
        "log_verbosity": request.log_verbosity,
    }
    if request.resources is not None:
        common["resources"] = JobResourceConfiguration(
            instance_type=request.resources.instance_type,
            instance_count=request.resources.instance_count,
        )
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
        max_cores_per_trial=limits.max_cores_per_trial,
        exit_score=limits.exit_score,
        enable_early_termination=limits.enable_early_termination,
    )
    training = request.training
    job.set_training(
        allowed_training_algorithms=training.allowed_algorithms,
        blocked_training_algorithms=training.blocked_algorithms,
        enable_stack_ensemble=training.enable_stack_ensemble,
        enable_vote_ensemble=training.enable_vote_ensemble,
        enable_onnx_compatible_models=training.enable_onnx_compatible_models,
        enable_model_explainability=training.enable_model_explainability,
        enable_dnn_training=training.enable_dnn_training,
    )
    featurization = request.featurization_settings
    job.set_featurization(
        mode=featurization.mode,
        column_name_and_types=featurization.column_name_and_types,
        transformer_params=_transformer_params(featurization),
        blocked_transformers=featurization.blocked_transformers,
    )
    if request.task is Task.FORECASTING and request.forecasting is not None:
        fc = request.forecasting
        job.set_forecast_settings(
            time_column_name=fc.time_column_name,
            forecast_horizon=fc.forecast_horizon,
            time_series_id_column_names=fc.time_series_id_column_names or None,
            frequency=fc.frequency,
            seasonality=fc.seasonality,
            target_lags=fc.target_lags,
            target_rolling_window_size=fc.target_rolling_window_size,
            feature_lags=fc.feature_lags,
            country_or_region_for_holidays=fc.country_or_region_for_holidays,
            short_series_handling_config=fc.short_series_handling_config,
            target_aggregate_function=fc.target_aggregate_function,
            use_stl=fc.use_stl,
            features_unknown_at_forecast_time=fc.features_unknown_at_forecast_time,
            cv_step_size=fc.cv_step_size,
        )
    return job


def _transformer_params(featurization: Featurization) -> dict[str, list[Any]] | None:
    """The request's transformer parameters as the SDK's ``ColumnTransformer`` objects."""
    from azure.ai.ml.automl import ColumnTransformer

    if featurization.transformer_params is None:
        return None
    return {
        name: [ColumnTransformer(fields=c.fields, parameters=c.parameters) for c in columns]
        for name, columns in featurization.transformer_params.items()
    }
