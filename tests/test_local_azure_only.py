"""The local backend refuses, by name and at once, the settings only Azure honours, and
honours the ones it can."""

from __future__ import annotations

import json
from typing import Any

import pytest

from automl_service.engines.local import LocalEngine
from automl_service.engines.local.azure_only import azure_only_settings, flaml_n_jobs
from automl_service.errors import PermanentError
from automl_service.request import AutoMLRequest, parse_request

pytest_plugins = ["fixtures_local"]


def make(**fields: Any) -> AutoMLRequest:
    body: dict[str, Any] = {
        "request_id": "local-1",
        "task": "classification",
        "training_data": "sample:iris",
        "target_column_name": "target",
    }
    body.update(fields)
    return parse_request(json.dumps(body))


FORECAST = {"time_column_name": "date", "forecast_horizon": 12}


def test_plain_requests_pass() -> None:
    """A request using only settings the local engine honours names nothing."""
    request = make(
        n_cross_validations="auto",
        description="iris",
        featurization="off",
        limits={"max_cores_per_trial": 2},
        training={"enable_dnn_training": False, "enable_stack_ensemble": False},
    )
    assert azure_only_settings(request) == []


def test_each_azure_only_field_is_named() -> None:
    """Every Azure-only setting a request gives appears in the list, by its path (model
    explainability is the local insight's permutation importance: not Azure-only)."""
    request = make(
        compute="azureml:cpu-cluster",
        resources={"instance_type": "Standard_E4s_v3"},
        log_verbosity="debug",
        training={"enable_dnn_training": True, "enable_model_explainability": True},
        featurization={"mode": "custom", "blocked_transformers": ["TfIdf"]},
    )
    assert azure_only_settings(request) == [
        "compute",
        "resources",
        "log_verbosity",
        "training.enable_dnn_training",
        "featurization (mode 'custom')",
    ]


def test_forecasting_settings_without_a_local_equivalent_are_named() -> None:
    """Holidays, lags, an automatic horizon and the like are named; their 'none' values
    ask for nothing and pass, as does ``cv_step_size`` (the backtest honours it)."""
    request = make(
        task="forecasting",
        primary_metric=None,
        forecasting={
            **FORECAST,
            "forecast_horizon": "auto",
            "country_or_region_for_holidays": "US",
            "target_lags": [1, 12],
            "use_stl": "none",
            "feature_lags": "none",
            "cv_step_size": 3,
        },
    )
    assert azure_only_settings(request) == [
        "forecasting.forecast_horizon ('auto')",
        "forecasting.target_lags",
        "forecasting.country_or_region_for_holidays",
    ]


def test_local_engine_refuses_before_creating_anything(engine: LocalEngine) -> None:
    """ensure_job fails at once with every Azure-only field named, and makes no job."""
    request = make(compute="cpu-cluster", training={"enable_dnn_training": True})
    with pytest.raises(PermanentError) as caught:
        engine.ensure_job(request)
    message = str(caught.value)
    assert "Azure-only" in message
    assert "compute" in message and "training.enable_dnn_training" in message
    assert engine.job_status(request.job_name) is None


@pytest.mark.parametrize(
    ("limits", "n_jobs"),
    [
        ({"max_concurrent_trials": 4}, 4),
        ({"max_concurrent_trials": 4, "max_cores_per_trial": 2}, 2),
        ({"max_concurrent_trials": 2, "max_cores_per_trial": 8}, 2),
        ({"max_concurrent_trials": 3, "max_cores_per_trial": -1}, 3),
    ],
)
def test_max_cores_per_trial_caps_flaml_threads(limits: dict[str, int], n_jobs: int) -> None:
    """``max_cores_per_trial`` caps FLAML's n_jobs; -1 (all cores) leaves it as it was."""
    assert flaml_n_jobs(make(limits=limits).limits) == n_jobs
