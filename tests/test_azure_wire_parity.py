"""Every AutoML job setting a request carries reaches Azure exactly as the SDK's own YAML
loader sends it: the job PUT of a request and of the equivalent CLI v2 job YAML, both made by
the real SDK against the loopback fake, are compared field by field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azureml_fake.server import FakeAzureML
from fixtures_retry import FAST

from automl_service.engines.azure.engine import AzureEngine
from automl_service.engines.azure.status import PollSchedule
from automl_service.request import parse_request

pytest_plugins = ["azureml_fake.fixtures"]

DATA = "azureml://datastores/workspaceblobstore/paths"

#: One request per task with every setting the request schema takes for it.
FULL_REQUESTS: dict[str, dict[str, Any]] = {
    "classification": {
        "request_id": "wire-cls",
        "task": "classification",
        "training_data": f"{DATA}/churn/",
        "target_column_name": "churned",
        "primary_metric": "AUC_weighted",
        "experiment_name": "churn",
        "description": "churn model, every setting",
        "log_verbosity": "debug",
        "n_cross_validations": "auto",
        "limits": {
            "timeout_minutes": 90,
            "trial_timeout_minutes": 20,
            "max_trials": 40,
            "max_concurrent_trials": 4,
            "max_cores_per_trial": -1,
            "exit_score": 0.95,
            "enable_early_termination": False,
        },
        "training": {
            "allowed_training_algorithms": ["LightGBM", "LogisticRegression"],
            "enable_model_explainability": True,
            "enable_dnn_training": False,
            "enable_stack_ensemble": True,
            "enable_vote_ensemble": False,
            "enable_onnx_compatible_models": False,
        },
        "featurization": {
            "mode": "custom",
            "column_name_and_types": {"plan": "Categorical", "tenure": "Numeric"},
            "transformer_params": {
                "imputer": [{"fields": ["tenure"], "parameters": {"strategy": "median"}}]
            },
            "blocked_transformers": ["LabelEncoder", "WordEmbedding"],
        },
        "resources": {"instance_type": "Standard_E4s_v3", "instance_count": 2},
        "tags": {"team": "growth"},
    },
    "regression": {
        "request_id": "wire-reg",
        "task": "regression",
        "training_data": f"{DATA}/houses/",
        "target_column_name": "price",
        "primary_metric": "r2_score",
        "experiment_name": "houses",
        "description": "house prices",
        "log_verbosity": "warning",
        "compute": "azureml:cpu-cluster",
        "validation": {
            "validation_data": f"{DATA}/houses-valid/",
            "test_data": f"{DATA}/houses-test/",
        },
        "limits": {
            "timeout_seconds": 3600,
            "trial_timeout_seconds": 300,
            "max_trials": 25,
            "max_concurrent_trials": 2,
            "max_cores_per_trial": 4,
            "exit_score": 0.9,
            "enable_early_termination": True,
        },
        "training": {
            "blocked_algorithms": ["KNN", "DecisionTree"],
            "enable_model_explainability": False,
            "enable_dnn_training": True,
            "enable_stack_ensemble": False,
            "enable_vote_ensemble": True,
            "enable_onnx_compatible_models": True,
        },
        "featurization": {
            "mode": "custom",
            "transformer_params": {
                "imputer": [
                    {"fields": ["rooms"], "parameters": {"strategy": "most_frequent"}},
                    {"fields": ["area"], "parameters": {"strategy": "constant", "fill_value": 0}},
                ],
                "hash_one_hot_encoder": [{"fields": ["town"], "parameters": {"number_of_bits": 3}}],
            },
        },
        "tags": {"team": "property"},
    },
    "forecasting": {
        "request_id": "wire-fc",
        "task": "forecasting",
        "training_data": f"{DATA}/sales/",
        "target_column_name": "sales",
        "primary_metric": "normalized_root_mean_squared_error",
        "experiment_name": "sales",
        "description": "sales per store and item",
        "log_verbosity": "info",
        "compute": "cpu-cluster",
        "validation": {"n_cross_validations": 3},
        "forecasting": {
            "time_column_name": "date",
            "time_series_id_column_names": ["store", "item"],
            "forecast_horizon": "auto",
            "frequency": "D",
            "seasonality": 7,
            "target_lags": "auto",
            "target_rolling_window_size": 7,
            "country_or_region_for_holidays": "US",
            "feature_lags": "auto",
            "short_series_handling_config": "pad",
            "target_aggregate_function": "sum",
            "use_stl": "seasontrend",
            "features_unknown_at_forecast_time": ["price"],
            "cv_step_size": 7,
        },
        "limits": {
            "timeout_minutes": 120,
            "trial_timeout_minutes": 15,
            "max_trials": 30,
            "max_concurrent_trials": 3,
            "max_cores_per_trial": 2,
            "exit_score": 0.05,
            "enable_early_termination": True,
        },
        "training": {
            "allowed_algorithms": ["Naive", "ExponentialSmoothing", "LightGBM"],
            "enable_model_explainability": True,
            "enable_dnn_training": False,
            "enable_stack_ensemble": True,
            "enable_vote_ensemble": True,
            "enable_onnx_compatible_models": False,
        },
        "featurization": {
            "mode": "custom",
            "column_name_and_types": {"store": "Categorical"},
            "blocked_transformers": ["TfIdf"],
        },
        "tags": {"team": "supply"},
    },
}

#: The same jobs as CLI v2 AutoML job YAML (``az ml job create --file``).
YAML_HEAD = """\
$schema: https://azuremlschemas.azureedge.net/latest/autoMLJob.schema.json
type: automl
name: sdk-{request_id}
display_name: automl-{request_id}
"""

FULL_YAML: dict[str, str] = {
    "classification": f"""\
experiment_name: churn
description: churn model, every setting
task: classification
log_verbosity: debug
primary_metric: AUC_weighted
target_column_name: churned
training_data:
  type: mltable
  path: {DATA}/churn/
n_cross_validations: auto
limits:
  timeout_minutes: 90
  trial_timeout_minutes: 20
  max_trials: 40
  max_concurrent_trials: 4
  max_cores_per_trial: -1
  exit_score: 0.95
  enable_early_termination: false
training:
  allowed_training_algorithms: [LightGBM, LogisticRegression]
  enable_model_explainability: true
  enable_dnn_training: false
  enable_stack_ensemble: true
  enable_vote_ensemble: false
  enable_onnx_compatible_models: false
featurization:
  mode: custom
  column_name_and_types:
    plan: Categorical
    tenure: Numeric
  transformer_params:
    imputer:
      - fields: [tenure]
        parameters:
          strategy: median
  blocked_transformers: [LabelEncoder, WordEmbedding]
resources:
  instance_type: Standard_E4s_v3
  instance_count: 2
tags:
  team: growth
  automl_service.request_id: wire-cls
""",
    "regression": f"""\
experiment_name: houses
description: house prices
compute: azureml:cpu-cluster
task: regression
log_verbosity: warning
primary_metric: r2_score
target_column_name: price
training_data:
  type: mltable
  path: {DATA}/houses/
validation_data:
  type: mltable
  path: {DATA}/houses-valid/
test_data:
  type: mltable
  path: {DATA}/houses-test/
limits:
  timeout_minutes: 60
  trial_timeout_minutes: 5
  max_trials: 25
  max_concurrent_trials: 2
  max_cores_per_trial: 4
  exit_score: 0.9
  enable_early_termination: true
training:
  blocked_training_algorithms: [KNN, DecisionTree]
  enable_model_explainability: false
  enable_dnn_training: true
  enable_stack_ensemble: false
  enable_vote_ensemble: true
  enable_onnx_compatible_models: true
featurization:
  mode: custom
  transformer_params:
    imputer:
      - fields: [rooms]
        parameters:
          strategy: most_frequent
      - fields: [area]
        parameters:
          strategy: constant
          fill_value: 0
    hash_one_hot_encoder:
      - fields: [town]
        parameters:
          number_of_bits: 3
tags:
  team: property
  automl_service.request_id: wire-reg
""",
    "forecasting": f"""\
experiment_name: sales
description: sales per store and item
compute: azureml:cpu-cluster
task: forecasting
log_verbosity: info
primary_metric: normalized_root_mean_squared_error
target_column_name: sales
training_data:
  type: mltable
  path: {DATA}/sales/
n_cross_validations: 3
forecasting:
  time_column_name: date
  time_series_id_column_names: [store, item]
  forecast_horizon: auto
  frequency: D
  seasonality: 7
  target_lags: auto
  target_rolling_window_size: 7
  country_or_region_for_holidays: US
  feature_lags: auto
  short_series_handling_config: pad
  target_aggregate_function: sum
  use_stl: seasontrend
  features_unknown_at_forecast_time: [price]
  cv_step_size: 7
limits:
  timeout_minutes: 120
  trial_timeout_minutes: 15
  max_trials: 30
  max_concurrent_trials: 3
  max_cores_per_trial: 2
  exit_score: 0.05
  enable_early_termination: true
training:
  allowed_training_algorithms: [Naive, ExponentialSmoothing, LightGBM]
  enable_model_explainability: true
  enable_dnn_training: false
  enable_stack_ensemble: true
  enable_vote_ensemble: true
  enable_onnx_compatible_models: false
featurization:
  mode: custom
  column_name_and_types:
    store: Categorical
  blocked_transformers: [TfIdf]
tags:
  team: supply
  automl_service.request_id: wire-fc
""",
}


def engine_for(ml_client: Any) -> AzureEngine:
    poll = PollSchedule(min_seconds=0.0, max_seconds=0.0)
    return AzureEngine(ml_client, compute="cpu-cluster", policy=FAST, poll=poll)


def service_put(fake: FakeAzureML, ml_client: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The job body the service's azure path PUTs for the request ``body``."""
    request = parse_request(json.dumps(body))
    engine_for(ml_client).ensure_job(request)
    puts = fake.calls_to("PUT", rf"/jobs/{request.job_name}$")
    assert len(puts) == 1
    return dict(puts[0].body)


def sdk_put(fake: FakeAzureML, ml_client: Any, yaml_text: str, tmp_path: Path) -> dict[str, Any]:
    """The job body the SDK itself PUTs for a CLI v2 job YAML (``load_job`` +
    ``jobs.create_or_update``)."""
    from azure.ai.ml import load_job

    path = tmp_path / "job.yml"
    path.write_text(yaml_text)
    job: Any = load_job(path)
    ml_client.jobs.create_or_update(job)
    puts = fake.calls_to("PUT", rf"/jobs/{job.name}$")
    assert len(puts) == 1
    return dict(puts[0].body)


def differences(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """Every path at which two JSON values differ, with both values."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found: list[str] = []
        for key in sorted(set(ours) | set(theirs)):
            if key not in theirs:
                found.append(f"{where}.{key}: only in the service's body ({ours[key]!r})")
            elif key not in ours:
                found.append(f"{where}.{key}: only in the SDK's body ({theirs[key]!r})")
            else:
                found.extend(differences(ours[key], theirs[key], f"{where}.{key}"))
        return found
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [
            d
            for i, pair in enumerate(zip(ours, theirs, strict=True))
            for d in differences(*pair, f"{where}[{i}]")
        ]
    return [] if ours == theirs else [f"{where}: service {ours!r}, SDK {theirs!r}"]


@pytest.mark.parametrize("task", sorted(FULL_REQUESTS))
def test_every_setting_reaches_the_wire_as_the_sdk_yaml_sends_it(
    task: str, fake_aml: FakeAzureML, ml_client: Any, tmp_path: Path
) -> None:
    """A request with every supported key PUTs, field by field, the body the SDK PUTs for
    the equivalent CLI v2 YAML."""
    body = FULL_REQUESTS[task]
    ours = service_put(fake_aml, ml_client, body)
    yaml_text = YAML_HEAD.format(request_id=body["request_id"]) + FULL_YAML[task]
    theirs = sdk_put(fake_aml, ml_client, yaml_text, tmp_path)
    assert differences(ours, theirs) == []
    details = ours["properties"]["taskDetails"]
    assert details["taskType"].lower() == task  # the comparison saw a real job body
    assert details["limitSettings"]["exitScore"] > 0


def test_azureml_prefixed_compute_is_sent_as_the_cluster_name(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """``azureml:cpu-cluster`` goes out as ``.../computes/cpu-cluster``, as the YAML loader
    sends it."""
    body = {**FULL_REQUESTS["regression"], "request_id": "wire-compute"}
    props = service_put(fake_aml, ml_client, body)["properties"]
    assert props["computeId"].endswith("/computes/cpu-cluster")
    assert "azureml:" not in props["computeId"]


def test_serverless_resources_run_without_the_default_cluster(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """A request with ``resources`` and no ``compute`` runs serverless: the engine's default
    cluster is not sent."""
    props = service_put(fake_aml, ml_client, FULL_REQUESTS["classification"])["properties"]
    assert "computeId" not in props
    # azure-ai-ml 1.35.2 writes an AutoML job's resources with the entity's snake_case keys
    # (the REST spec names them instanceType / instanceCount); its YAML loader sends the same.
    assert props["resources"]["instance_type"] == "Standard_E4s_v3"
    assert props["resources"]["instance_count"] == 2


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_stack_ensemble_is_left_to_azure_when_unset(
    task: str, fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """Without ``enable_stack_ensemble`` no value is sent, so Azure's default applies."""
    body = {
        "request_id": f"stack-{task}",
        "task": task,
        "training_data": f"{DATA}/t/",
        "target_column_name": "y",
    }
    details = service_put(fake_aml, ml_client, body)["properties"]["taskDetails"]
    assert "enableStackEnsemble" not in details.get("trainingSettings", {})
    assert "exitScore" not in details["limitSettings"]
    assert "maxCoresPerTrial" not in details["limitSettings"]


@pytest.mark.parametrize("task", sorted(FULL_REQUESTS))
def test_a_job_file_read_as_a_request_puts_what_the_sdk_puts_for_it(
    task: str, fake_aml: FakeAzureML, ml_client: Any, tmp_path: Path
) -> None:
    """The same CLI v2 job file, read by the service (as ``submit job.yml`` reads it) and
    by the SDK's own ``load_job``: the two job PUTs are equal field by field."""
    from automl_service.request import request_from
    from automl_service.yaml_files import load_yaml

    request_id = FULL_REQUESTS[task]["request_id"]
    head = YAML_HEAD.replace("name: sdk-{request_id}", "name: {request_id}")
    yaml_text = head.format(request_id=request_id) + FULL_YAML[task]
    request = request_from(load_yaml(yaml_text.encode(), "job.yml"))
    assert request.id == request_id
    engine_for(ml_client).ensure_job(request)
    (put,) = fake_aml.calls_to("PUT", rf"/jobs/{request.job_name}$")
    theirs = sdk_put(fake_aml, ml_client, yaml_text, tmp_path)
    assert differences(dict(put.body), theirs) == []
