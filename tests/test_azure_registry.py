"""Model registration on Azure ML through the real SDK against the loopback fake."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from azureml_fake.server import FakeAzureML
from fixtures_retry import FAST

from automl_service.engines.azure.registry import AzureRegistry
from automl_service.errors import PermanentError
from automl_service.metrics import Goal
from automl_service.request import AutoMLRequest, parse_request
from automl_service.runs import ModelVersion, RunRecord, RunStatus
from automl_service.selection import Selection, select_best

pytest_plugins = ["azureml_fake.fixtures"]


def make_request(request_id: str = "r-7") -> AutoMLRequest:
    return parse_request(
        json.dumps(
            {
                "request_id": request_id,
                "task": "regression",
                "training_data": "azureml:houses:2",
                "target_column_name": "price",
                "primary_metric": "r2_score",
                "registration": {"model_name": "houses", "tags": {"owner": "pricing"}},
            }
        )
    )


def make_selection(job: str = "automl-r-7") -> Selection:
    runs = [
        RunRecord(
            f"{job}_0", RunStatus.FINISHED, {"r2_score": 0.81}, {"run_algorithm": "LightGBM"}
        ),
        RunRecord(f"{job}_1", RunStatus.FINISHED, {"r2_score": 0.64}),
    ]
    return select_best(runs, "r2_score", Goal.MAXIMIZE)


def test_register_puts_the_runs_mlflow_model_with_lineage_tags(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """The winner's MLflow model becomes version 1, tagged with request, job, run, metric."""
    version = AzureRegistry(ml_client, policy=FAST).register(make_request(), make_selection())
    assert (version.name, version.version, version.created) == ("houses", "1", True)
    assert version.run_id == "automl-r-7_0"
    puts = fake_aml.calls_to("PUT", r"/models/houses/versions/1$")
    assert len(puts) == 1
    props = puts[0].body["properties"]
    assert props["modelType"] == "mlflow_model"
    assert (
        props["modelUri"] == "azureml://jobs/automl-r-7_0/outputs/artifacts/outputs/mlflow-model/"
    )
    assert props["tags"] == {
        "owner": "pricing",
        "automl_service.request_id": "r-7",
        "automl_service.job_name": "automl-r-7",
        "automl_service.run_id": "automl-r-7_0",
        "automl_service.metric": "r2_score",
        "automl_service.metric_value": "0.81",
        "automl_service.goal": "maximize",
    }


def test_register_again_returns_the_same_version(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """Registering the same request twice finds the first version and PUTs nothing new."""
    registry = AzureRegistry(ml_client, policy=FAST)
    first = registry.register(make_request(), make_selection())
    again = registry.register(make_request(), make_selection())
    assert (again.version, again.created) == (first.version, False)
    assert len(fake_aml.calls_to("PUT", r"/models/")) == 1


def test_next_request_gets_the_next_version(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """Another request for the same model name adds version 2, not a replacement."""
    fake_aml.add_model_version("houses", "1", {"automl_service.request_id": "older"})
    registry = AzureRegistry(ml_client, policy=FAST)
    version = registry.register(make_request(), make_selection())
    assert version.version == "2"
    assert registry.find(make_request("never-seen")) is None


def test_a_version_number_taken_by_another_registration_is_tried_again(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """Two registrations of one name at once can read the same next version: Azure then
    refuses the second write ("Asset paths cannot be updated."), and the registry writes
    the version that is next now, leaving the other request's version as it was."""
    fake_aml.add_model_version("houses", "1", {"automl_service.request_id": "older"}, "p/1")
    fake_aml.stale_next_versions = 1  # the first answer names version 1, already taken
    version = AzureRegistry(ml_client, policy=FAST).register(make_request(), make_selection())
    assert version.version == "2"
    puts = [c.path.rsplit("/", 1)[1] for c in fake_aml.calls_to("PUT", r"/models/houses/")]
    assert puts == ["1", "2"]
    older = fake_aml.models["houses"]["1"]["properties"]
    assert (older["modelUri"], older["tags"]) == ("p/1", {"automl_service.request_id": "older"})


def test_transient_failure_on_register_is_retried(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """A 503 on the version PUT is retried and the model is registered once."""
    fake_aml.fail("PUT", r"/models/houses/versions/", 503)
    version = AzureRegistry(ml_client, policy=FAST).register(make_request(), make_selection())
    assert version.version == "1"
    assert len(fake_aml.models["houses"]) == 1


def test_forbidden_register_is_permanent(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """A 403 on the version PUT ends the request with that reason."""
    fake_aml.fail("PUT", r"/models/houses/versions/", 403)
    with pytest.raises(PermanentError, match="403"):
        AzureRegistry(ml_client, policy=FAST).register(make_request(), make_selection())


def test_two_receivers_registering_at_once_answer_with_one_version(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """Both receivers of one request's message look before either writes, and the second
    to write gets version 2: it archives its own and answers with version 1, as the
    first does, and listings show one version for the request."""
    looked = threading.Barrier(2)

    class LooksWithTheOther(AzureRegistry):
        def find(self, request: AutoMLRequest) -> ModelVersion | None:
            found = super().find(request)
            if looked.wait() == 0:
                time.sleep(0.5)  # this one writes second
            return found

    answers: list[ModelVersion] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(
                LooksWithTheOther(ml_client, policy=FAST).register(make_request(), make_selection())
            )
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(a.version for a in answers) == ["1", "1"]
    assert set(fake_aml.models["houses"]) == {"1", "2"}
    assert fake_aml.models["houses"]["2"]["properties"]["isArchived"] is True
    assert not fake_aml.models["houses"]["1"]["properties"].get("isArchived")
    found = AzureRegistry(ml_client, policy=FAST).find(make_request())
    assert found is not None and found.version == "1"
