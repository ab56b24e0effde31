"""AutoML jobs on Azure ML: building, submitting, re-attaching and polling, through the real
SDK against the loopback fake."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from azureml_fake.server import RANDOM_FAULTS, FakeAzureML
from fixtures_retry import FAST

from automl_service.engines.azure.engine import AzureEngine
from automl_service.engines.azure.status import PollSchedule
from automl_service.engines.base import JobState
from automl_service.errors import PermanentError, TransientError
from automl_service.request import AutoMLRequest, parse_request

pytest_plugins = ["azureml_fake.fixtures"]

NO_THROTTLE = PollSchedule(min_seconds=0.0, max_seconds=0.0)


def make_request(**fields: Any) -> AutoMLRequest:
    body: dict[str, Any] = {
        "request_id": "r-42",
        "task": "classification",
        "training_data": "azureml://datastores/workspaceblobstore/paths/iris/",
        "target_column_name": "species",
        "primary_metric": "AUC_weighted",
        "limits": {"timeout_seconds": 601, "trial_timeout_seconds": 59, "max_trials": 8},
        "tags": {"team": "forecasting"},
    }
    body.update(fields)
    return parse_request(json.dumps(body))


def engine_for(ml_client: Any, **kwargs: Any) -> AzureEngine:
    kwargs.setdefault("policy", FAST)
    kwargs.setdefault("poll", NO_THROTTLE)
    return AzureEngine(ml_client, compute="cpu-cluster", **kwargs)


def test_submit_sends_the_request_as_an_automl_job(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """A new request becomes one PUT of an AutoML job carrying task, metric, limits, tags."""
    status = engine_for(ml_client).ensure_job(make_request())
    assert status.state is JobState.QUEUED
    puts = fake_aml.calls_to("PUT", r"/jobs/automl-r-42$")
    assert len(puts) == 1
    props = puts[0].body["properties"]
    task = props["taskDetails"]
    assert props["jobType"] == "AutoML"
    assert props["experimentName"] == "automl-service"
    assert props["computeId"].endswith("/computes/cpu-cluster")
    assert props["tags"] == {"team": "forecasting", "automl_service.request_id": "r-42"}
    assert task["taskType"] == "Classification"
    assert task["primaryMetric"] == "AUCWeighted"
    assert task["targetColumnName"] == "species"
    assert task["trainingData"] == {
        "uri": "azureml://datastores/workspaceblobstore/paths/iris/",
        "jobInputType": "mltable",
    }
    assert task["limitSettings"]["timeout"] == "PT11M"  # 601 s rounds up to 11 minutes
    assert task["limitSettings"]["trialTimeout"] == "PT1M"
    assert task["limitSettings"]["maxTrials"] == 8


def test_existing_job_is_reattached_never_duplicated(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """A second ensure_job (another worker, or after a crash) finds the job and PUTs nothing."""
    engine_for(ml_client).ensure_job(make_request())
    status = engine_for(ml_client).ensure_job(make_request())
    assert status.job_name == "automl-r-42"
    assert len(fake_aml.calls_to("PUT", r"/jobs/")) == 1
    assert len(fake_aml.calls_to("GET", r"/jobs/automl-r-42$")) == 2


@pytest.mark.parametrize(
    ("script", "state"),
    [
        (["Queued"], JobState.QUEUED),
        (["Preparing"], JobState.QUEUED),
        (["Paused"], JobState.QUEUED),
        (["Running"], JobState.RUNNING),
        (["NotResponding"], JobState.RUNNING),
        (["Finalizing"], JobState.FINISHING),
        (["CancelRequested"], JobState.FINISHING),
        (["Canceled"], JobState.CANCELED),
    ],
)
def test_azure_statuses_map_onto_job_states(
    fake_aml: FakeAzureML, ml_client: Any, script: list[str], state: JobState
) -> None:
    """Each Azure status the SDK parses reaches the worker as the matching JobState."""
    engine = engine_for(ml_client)
    engine.ensure_job(make_request())
    fake_aml.job_scripts["automl-r-42"] = script
    status = engine.job_status("automl-r-42")
    assert status is not None and status.state is state


def test_failed_job_carries_its_error(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """A job that ends Failed reports the run's own error message."""
    engine = engine_for(ml_client)
    engine.ensure_job(make_request())
    fake_aml.job_scripts["automl-r-42"] = ["Failed"]
    fake_aml.job_errors["automl-r-42"] = "Training data has only one class"
    status = engine.ensure_job(make_request())
    assert status.state is JobState.FAILED
    assert status.error is not None and "only one class" in status.error


def test_unknown_job_status_is_none(ml_client: Any) -> None:
    """job_status of a job that was never submitted answers None, not an error."""
    assert engine_for(ml_client).job_status("automl-nothing") is None


def test_polls_are_throttled_by_job_age(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """Re-checks within the poll interval are answered from memory; after it, one GET."""
    now = [time.time()]
    engine = engine_for(ml_client, poll=PollSchedule(), clock=lambda: now[0])
    engine.ensure_job(make_request())
    gets = len(fake_aml.calls_to("GET", r"/jobs/automl-r-42$"))
    for _ in range(5):
        now[0] += 2.0
        engine.ensure_job(make_request())
    assert len(fake_aml.calls_to("GET", r"/jobs/automl-r-42$")) == gets
    now[0] += 60.0
    engine.ensure_job(make_request())
    assert len(fake_aml.calls_to("GET", r"/jobs/automl-r-42$")) == gets + 1


def test_throttled_job_costs_few_polls_per_hour() -> None:
    """The poll schedule keeps a one-hour job under 50 status calls."""
    assert PollSchedule().polls_until(3600) < 50


def test_429_with_retry_after_is_retried(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """A 429 with Retry-After on submit is waited out and retried, and the job is created."""
    fake_aml.fail("PUT", r"/jobs/", 429, headers={"Retry-After": "1"})
    status = engine_for(ml_client).ensure_job(make_request())
    assert status.state is JobState.QUEUED
    assert len(fake_aml.calls_to("PUT", r"/jobs/")) == 2


def test_503_and_reset_connection_are_retried(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """A 503 and a reset connection on the lookup are transient: the next attempt goes on."""
    fake_aml.fail("GET", r"/jobs/", 503)
    fake_aml.reset_connection("GET", r"/jobs/")
    engine_for(ml_client).ensure_job(make_request())
    assert len(fake_aml.calls_to("GET", r"/jobs/automl-r-42$")) == 3
    assert len(fake_aml.calls_to("PUT", r"/jobs/")) == 1


def test_persistent_503_becomes_transient_error(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """When every attempt fails with 503, the worker gets TransientError to check later."""
    fake_aml.fail("GET", r"/jobs/", 503, times=100)
    with pytest.raises(TransientError, match="503"):
        engine_for(ml_client).ensure_job(make_request())
    assert len(fake_aml.calls_to("GET", r"/jobs/")) == FAST.attempts


def test_random_faults_are_seeded_and_counted(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """The fake's random mode fails the given fraction of calls, the same ones for the same
    seed, counts each by kind, and the engine's retries see them through."""
    draws = []
    for _ in range(2):
        fake_aml.random_faults(0.5, seed=7)
        draws.append([fake_aml._random_fault("/jobs/x") for _ in range(40)])
    assert draws[0] == draws[1]
    assert 5 < sum(1 for kind in draws[0] if kind) < 35
    assert {kind for kind in draws[0] if kind} <= set(RANDOM_FAULTS)
    assert fake_aml._random_fault("/operations/endpoint:x") is None  # never on LRO polls
    fake_aml.injected.clear()
    fake_aml.random_faults(0.3, seed=1)
    status = engine_for(ml_client).ensure_job(make_request())
    assert status.state is JobState.QUEUED
    assert len(fake_aml.jobs) == 1


def test_job_hook_runs_once_per_new_job(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """``on_job_created`` sees a job name once, before the job can be read; a second PUT of
    the same name (a retry whose first answer was lost) does not call it again."""
    from automl_service.engines.azure.jobs import build_automl_job

    seen: list[tuple[str, bool]] = []
    fake_aml.on_job_created = lambda name, body: seen.append((name, name in fake_aml.jobs))
    engine_for(ml_client).ensure_job(make_request())
    ml_client.jobs.create_or_update(build_automl_job(make_request(), compute="cpu-cluster"))
    assert len(fake_aml.calls_to("PUT", r"/jobs/automl-r-42$")) == 2
    assert seen == [("automl-r-42", False)]


def test_a_job_name_cannot_be_put_again_with_other_settings(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """As Azure ML does, the fake refuses a job PUT on an existing name that changes more
    than description, tags, display name or properties; the engine, meeting its own job
    there (another worker created it first), uses it as it is."""
    from automl_service.engines.azure.jobs import build_automl_job

    engine_for(ml_client).ensure_job(make_request())
    other = build_automl_job(make_request(), compute="gpu-cluster")
    with pytest.raises(Exception, match="only description, tags, display name"):
        ml_client.jobs.create_or_update(other)
    fake_aml.job_scripts["automl-r-42"] = ["Running"]
    status = engine_for(ml_client).ensure_job(make_request())
    assert status.state is JobState.RUNNING
    assert fake_aml.jobs["automl-r-42"]["properties"]["computeId"].endswith("/cpu-cluster")


@pytest.mark.parametrize("status", [400, 403])
def test_refused_create_is_permanent(fake_aml: FakeAzureML, ml_client: Any, status: int) -> None:
    """A 400/403 on create ends the request with the service's reason, without retries."""
    fake_aml.fail("PUT", r"/jobs/", status)
    with pytest.raises(PermanentError, match=str(status)):
        engine_for(ml_client).ensure_job(make_request())
    assert len(fake_aml.calls_to("PUT", r"/jobs/")) == 1


def test_csv_training_data_becomes_an_mltable(tmp_path: Path) -> None:
    """A CSV path is copied next to a generated MLTable file; a folder is used as it is."""
    from automl_service.engines.azure.data import MLTableStager

    csv = tmp_path / "iris.csv"
    csv.write_text("a,b,species\n1,2,x\n")
    stage = MLTableStager(tmp_path / "staging")
    folder = Path(stage(str(csv), "training"))
    assert (folder / "iris.csv").read_text() == csv.read_text()
    assert "file: ./iris.csv" in (folder / "MLTable").read_text()
    assert stage(str(csv), "training") == str(folder)
    remote = stage("https://example.org/data/iris.csv", "validation")
    assert "file: https://example.org/data/iris.csv" in (Path(remote) / "MLTable").read_text()
    assert stage("azureml:iris:3", "training") == "azureml:iris:3"
    assert stage("azureml://datastores/x/paths/iris/", "training").startswith("azureml://")


ROUND_TRIP_REQUESTS = {
    "classification": {},
    "regression": {
        "task": "regression",
        "primary_metric": "r2_score",
        "validation": {"validation_data": "azureml:houses-valid:1", "test_data": "azureml:t:1"},
        "training": {"blocked_algorithms": ["KNN"], "enable_vote_ensemble": True},
        "featurization": "off",
    },
    "forecasting": {
        "task": "forecasting",
        "primary_metric": "normalized_root_mean_squared_error",
        "forecasting": {
            "time_column_name": "date",
            "forecast_horizon": 14,
            "time_series_id_column_names": ["store"],
            "frequency": "D",
            "seasonality": 7,
        },
        "validation": {"n_cross_validations": 3},
        "training": {"allowed_algorithms": ["Naive", "ExponentialSmoothing", "LightGBM"]},
    },
}


@pytest.mark.parametrize("task", sorted(ROUND_TRIP_REQUESTS))
def test_job_spec_round_trips_through_the_sdk_schema(task: str, tmp_path: Path) -> None:
    """Each task's job dumps to YAML and loads back through the SDK's own validation
    with its settings intact."""
    from azure.ai.ml import load_job

    from automl_service.engines.azure.jobs import build_automl_job

    request = make_request(**ROUND_TRIP_REQUESTS[task])
    job = build_automl_job(request, compute="cpu-cluster")
    path = tmp_path / "job.yml"
    job.dump(path)
    loaded: Any = load_job(path)
    assert loaded.task_type.lower() == task
    assert loaded.name == request.job_name
    assert loaded.tags["automl_service.request_id"] == "r-42"
    assert loaded.limits.timeout_minutes == 11
    assert loaded.limits.max_trials == 8
    rest = loaded._to_rest_object().properties.task_details
    assert rest.primary_metric.lower().replace("_", "") == request.metric.lower().replace("_", "")
    if task == "forecasting":
        fc = loaded.forecasting_settings
        assert (fc.time_column_name, fc.forecast_horizon, fc.frequency) == ("date", 14, "D")
        # The SDK's YAML dump writes this list as the string "['store']" (its schema's
        # Str-or-List union with marshmallow 4); the REST body the service submits is a list.
        built = job._to_rest_object().properties.task_details.forecasting_settings
        assert built.time_series_id_column_names == ["store"]
        assert [str(a.value) for a in loaded.training.allowed_training_algorithms] == [
            "Naive",
            "ExponentialSmoothing",
            "LightGBM",
        ]
    if task == "regression":
        assert loaded.featurization.mode == "off"
        assert loaded.training.enable_vote_ensemble is True
        assert [str(a.value) for a in loaded.training.blocked_training_algorithms] == ["KNN"]
        assert loaded.validation_data.path.endswith("houses-valid:1")
        assert loaded.test_data.path.endswith("t:1")


def test_workspace_comes_from_settings_or_config_file(tmp_path: Path) -> None:
    """A workspace is named in settings or by a config file; neither is a configuration
    error that says what to set."""
    from automl_service.engines.azure.client import build_credential, build_ml_client
    from automl_service.errors import ConfigurationError
    from automl_service.settings import AzureSettings

    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"subscription_id": "s-1", "resource_group": "rg-1", "workspace_name": "ws-1"})
    )
    token = object()
    client = build_ml_client(AzureSettings(config_path=config), token)
    assert (client.subscription_id, client.resource_group_name, client.workspace_name) == (
        "s-1",
        "rg-1",
        "ws-1",
    )
    with pytest.raises(ConfigurationError, match=r"azure\.workspace_name"):
        build_ml_client(AzureSettings(subscription_id="s", resource_group="rg"), token)
    with pytest.raises(ConfigurationError, match="not found"):
        build_ml_client(AzureSettings(config_path=tmp_path / "missing.json"), token)
    assert type(build_credential(AzureSettings())).__name__ == "DefaultAzureCredential"
    identity = build_credential(AzureSettings(client_id="0000-client"))
    assert type(identity).__name__ == "ManagedIdentityCredential"


def test_concurrent_submit_attaches_to_the_job_another_worker_made(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """When another worker creates the job between our lookup and our PUT (409), the job
    is re-read and attached; there is still one job."""
    engine_for(ml_client).ensure_job(make_request())
    fake_aml.fail("GET", r"/jobs/automl-r-42$", 404)
    fake_aml.fail("PUT", r"/jobs/automl-r-42$", 409)
    status = engine_for(ml_client).ensure_job(make_request())
    assert status.job_name == "automl-r-42"
    assert len(fake_aml.calls_to("PUT", r"/jobs/")) == 2
    assert list(fake_aml.jobs) == ["automl-r-42"]


def test_completed_job_is_asked_again_while_its_best_run_tag_is_unreadable(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """If the tracking server is down when the job completes, the status is not frozen
    without the engine's best run: the next check looks again."""
    from automl_service.engines.azure.tracking import WorkspaceTracking

    tracking = WorkspaceTracking("http://127.0.0.1:9", policy=FAST)
    now = [time.time()]
    engine = engine_for(ml_client, tracking=tracking, poll=PollSchedule(), clock=lambda: now[0])
    engine.ensure_job(make_request())
    fake_aml.job_scripts["automl-r-42"] = ["Completed"]
    now[0] += 100.0
    first = engine.ensure_job(make_request())
    assert first.state is JobState.COMPLETED and first.best_child_run_id is None
    engine.ensure_job(make_request())  # same instant: a cached answer would make no call
    assert len(fake_aml.calls_to("GET", r"/jobs/automl-r-42$")) == 3


def test_settings_the_sdk_refuses_end_the_request(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """An algorithm name the SDK does not know fails the request at once, with no PUT."""
    request = make_request(training={"allowed_algorithms": ["NoSuchAlgorithm"]})
    with pytest.raises(PermanentError, match="not a valid Azure AutoML job"):
        engine_for(ml_client).ensure_job(request)
    assert not fake_aml.calls_to("PUT", r"/jobs/")


def test_a_threshold_only_the_local_backend_applies_is_refused_not_dropped() -> None:
    """training.decision_threshold fails the request on Azure with a message saying why,
    instead of a job that silently ignores it."""
    from automl_service.engines.azure.jobs import build_automl_job

    request = make_request(training={"decision_threshold": 0.7})
    with pytest.raises(PermanentError, match="decision_threshold is applied by the local"):
        build_automl_job(request, compute="cpu-cluster")


def test_cancel_asks_azure_once_and_the_job_ends_canceled(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """A running job gets one cancel call; asking again, or for a job that ended or was
    never submitted, costs no cancel call."""
    engine = engine_for(ml_client)
    engine.ensure_job(make_request())
    engine.ensure_job(make_request())  # now Running
    engine.cancel_job("automl-r-42", "sent by mistake")
    assert len(fake_aml.calls_to("POST", r"/jobs/automl-r-42/cancel$")) == 1
    engine.cancel_job("automl-r-42", "again")  # CancelRequested: already on its way
    status = engine.job_status("automl-r-42")
    assert status is not None and status.state is JobState.CANCELED
    engine.cancel_job("automl-r-42", "once more")
    engine.cancel_job("automl-never-sent", "nothing to stop")
    assert len(fake_aml.calls_to("POST", r"/cancel$")) == 1


def test_ignored_columns_are_dropped_in_the_mltable_the_service_writes(tmp_path: Path) -> None:
    """For a CSV the generated MLTable leaves the columns out; data whose MLTable the
    service does not write is refused with what to do, never trained on whole."""
    from automl_service.engines.azure.data import MLTableStager
    from automl_service.engines.azure.jobs import build_automl_job

    csv = tmp_path / "churn.csv"
    csv.write_text("customer_id,plan,churned\n7,a,no\n")
    stage = MLTableStager(tmp_path / "staging")
    plain = Path(stage(str(csv), "training"))
    dropped = Path(stage(str(csv), "training", ["customer_id"]))
    assert dropped != plain and "drop_columns" not in (plain / "MLTable").read_text()
    assert '  - drop_columns: ["customer_id"]' in (dropped / "MLTable").read_text()
    for reference in ("azureml:churn:3", "azureml://datastores/x/paths/churn/"):
        with pytest.raises(PermanentError, match="drop_columns transformation"):
            stage(reference, "training", ["customer_id"])
    request = make_request(ignored_columns=["customer_id"])
    with pytest.raises(PermanentError, match="ignored_columns"):
        build_automl_job(request)  # its data is an azureml:// folder


def test_forecast_quantiles_are_refused_on_azure_not_dropped() -> None:
    from automl_service.engines.azure.jobs import build_automl_job

    request = make_request(
        task="forecasting",
        primary_metric="normalized_root_mean_squared_error",
        forecasting={"time_column_name": "d", "forecast_horizon": 3, "forecast_quantiles": [0.1]},
    )
    with pytest.raises(PermanentError, match="forecast_quantiles is applied by the local"):
        build_automl_job(request, compute="cpu-cluster")
