"""``automl-service rollback`` on Azure ML: the previous model version back, blue/green,
through the real SDK and the fake workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azureml_fake.fixtures import backend_on_fake, roll_out
from azureml_fake.server import FakeAzureML
from fixtures_retry import FAST

from automl_service.engines.azure.deployer import ROLLED_BACK_FROM_TAG, AzureDeployer
from automl_service.engines.azure.promotion import deployment_name
from automl_service.engines.azure.registry import model_path
from automl_service.engines.azure.rollback import (
    parse_model_label,
    roll_back,
    rollback_plan,
)
from automl_service.errors import PermanentError
from automl_service.exit_codes import EXIT_FAILED, EXIT_OK
from automl_service.request import AutoMLRequest, parse_request
from automl_service.runs import Endpoint, ModelVersion
from automl_service.settings import AzureSettings
from automl_service.tags import PREVIOUS_MODEL_TAG, alias_tag

pytest_plugins = ["azureml_fake.fixtures"]

ENDPOINT = "houses-ep"
CHAMPION = alias_tag("champion")
V1, V2 = deployment_name("houses", "1"), deployment_name("houses", "2")


def make_request(request_id: str) -> AutoMLRequest:
    return parse_request(
        json.dumps(
            {
                "request_id": request_id,
                "task": "regression",
                "training_data": "azureml:houses:2",
                "target_column_name": "price",
                "registration": {"model_name": "houses"},
                "deployment": {"endpoint_name": ENDPOINT, "instance_count": 2},
            }
        )
    )


def back(deployer: AzureDeployer, waits: list[str] | None = None) -> Endpoint:
    return roll_back(
        deployer,
        ENDPOINT,
        timeout=10,
        interval=0.05,
        on_wait=None if waits is None else waits.append,
    )


def traffic(fake: FakeAzureML) -> dict[str, int]:
    return {k: v for k, v in fake.endpoints[ENDPOINT]["properties"]["traffic"].items() if v}


def champions(fake: FakeAzureML) -> list[str]:
    versions = fake.models["houses"]
    return sorted(v for v, m in versions.items() if CHAMPION in m["properties"]["tags"])


def live_deployments(fake: FakeAzureML) -> list[str]:
    """The endpoint's deployments not being deleted."""
    return sorted(
        name
        for (ep, name), dep in fake.deployments.items()
        if ep == ENDPOINT and dep["properties"]["provisioningState"] != "Deleting"
    )


@pytest.fixture
def two_versions_live(fake_aml: FakeAzureML, ml_client: Any) -> AzureDeployer:
    """houses:1 deployed, then houses:2 in its place; the fake deletes quickly."""
    fake_aml.delete_delay = 0.2
    for version in ("1", "2"):
        fake_aml.add_model_version("houses", version, {}, model_path(f"automl-r-{version}_0"))
    deployer = AzureDeployer(ml_client, policy=FAST)
    roll_out(deployer, make_request("r-1"), ModelVersion("houses", "1"))
    roll_out(deployer, make_request("r-2"), ModelVersion("houses", "2"))
    return deployer


def test_a_deployment_records_the_version_it_replaced_in_the_put_that_creates_it(
    fake_aml: FakeAzureML, two_versions_live: AzureDeployer
) -> None:
    first, second = (c.body["tags"] for c in fake_aml.calls_to("PUT", r"/deployments/"))
    assert PREVIOUS_MODEL_TAG not in first  # the endpoint's first deployment replaced none
    assert second[PREVIOUS_MODEL_TAG] == "houses:1"
    assert traffic(fake_aml) == {V2: 100} and champions(fake_aml) == ["2"]


def test_rollback_puts_the_previous_version_back_and_twice_returns(
    fake_aml: FakeAzureML, two_versions_live: AzureDeployer
) -> None:
    """Traffic, deployments and the champion tag follow the rollback; the new deployment
    records the version rolled back from, so a second rollback returns to houses:2."""
    deployer = two_versions_live
    fake_aml.delete_delay = 2.0
    puts_before = len(fake_aml.calls_to("PUT", r"/deployments/"))

    endpoint = back(deployer)

    assert (endpoint.name, endpoint.deployment, endpoint.promoted) == (ENDPOINT, V1, True)
    assert endpoint.reason == f"rolled back from {V2} (houses:2)"
    assert traffic(fake_aml) == {V1: 100}
    assert live_deployments(fake_aml) == [V1]  # houses:2's deployment is being deleted
    assert fake_aml.calls_to("DELETE", rf"/deployments/{V2}$")
    assert champions(fake_aml) == ["1"]
    (put,) = fake_aml.calls_to("PUT", r"/deployments/")[puts_before:]
    assert put.body["properties"]["model"].endswith("/models/houses/versions/1")
    assert put.body["sku"]["capacity"] == 2  # the instances of the one it replaces
    assert put.body["tags"][PREVIOUS_MODEL_TAG] == "houses:2"
    assert put.body["tags"][ROLLED_BACK_FROM_TAG] == V2

    # Again: houses:2's deployment is still being deleted, so the rollback waits for it
    # to go before creating it anew.
    waits: list[str] = []
    again = back(deployer, waits)

    assert again.deployment == V2 and again.reason == f"rolled back from {V1} (houses:1)"
    assert any("Deleting" in w for w in waits)
    assert traffic(fake_aml) == {V2: 100}
    assert live_deployments(fake_aml) == [V2]
    assert champions(fake_aml) == ["2"]
    last = fake_aml.calls_to("PUT", r"/deployments/")[-1].body
    assert last["tags"][PREVIOUS_MODEL_TAG] == "houses:1"


def test_rollback_of_an_unknown_endpoint_or_one_without_a_recorded_version_refuses(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """Nothing is written when there is nowhere to go back to."""
    deployer = AzureDeployer(ml_client, policy=FAST)
    with pytest.raises(PermanentError, match="no endpoint 'nope'"):
        deployer.plan_rollback("nope")
    fake_aml.add_live_deployment(ENDPOINT, "blue", "azureml:houses:1")
    with pytest.raises(PermanentError, match="blue records no previous model version"):
        deployer.plan_rollback(ENDPOINT)
    fake_aml.deployments[(ENDPOINT, "blue")]["tags"] = {PREVIOUS_MODEL_TAG: "houses:7"}
    with pytest.raises(PermanentError, match="houses:7 is no longer registered"):
        deployer.plan_rollback(ENDPOINT)
    assert not [c for c in fake_aml.calls if c.method != "GET"]
    assert traffic(fake_aml) == {"blue": 100}


def test_a_previous_version_that_fails_to_deploy_leaves_traffic(
    fake_aml: FakeAzureML, two_versions_live: AzureDeployer
) -> None:
    fake_aml.deployment_outcome = "Failed"
    with pytest.raises(PermanentError, match="Failed"):
        back(two_versions_live)
    assert traffic(fake_aml) == {V2: 100} and champions(fake_aml) == ["2"]


def test_plan_and_labels_are_pure() -> None:
    assert parse_model_label("houses:12") == ModelVersion("houses", "12")
    assert parse_model_label("houses") is None and parse_model_label(None) is None
    plan = rollback_plan(
        "ep",
        "blue",
        "/subscriptions/s/workspaces/w/models/houses/versions/3",
        {PREVIOUS_MODEL_TAG: "houses:2"},
        PREVIOUS_MODEL_TAG,
        instance_type="Standard_DS3_v2",
        instance_count=1,
    )
    assert (plan.current, plan.target) == (ModelVersion("houses", "3"), ModelVersion("houses", "2"))
    with pytest.raises(PermanentError, match="serves no registered model"):
        rollback_plan(
            "ep",
            "blue",
            None,
            {PREVIOUS_MODEL_TAG: "houses:2"},
            PREVIOUS_MODEL_TAG,
            instance_type="x",
            instance_count=1,
        )


def test_the_command_rolls_back_on_azure_and_prints_json(
    fake_aml: FakeAzureML,
    two_versions_live: AzureDeployer,
    azure_settings: AzureSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``automl-service rollback ENDPOINT --json`` on the azure backend; an endpoint with
    nowhere to go back to fails with the reason."""
    import automl_service.backends as backends
    from automl_service.cli import main

    for key, value in {
        "BACKEND": "azure",
        "LOCAL__DATA_DIR": str(tmp_path),
        "AZURE__SUBSCRIPTION_ID": azure_settings.subscription_id,
        "AZURE__RESOURCE_GROUP": azure_settings.resource_group,
        "AZURE__WORKSPACE_NAME": azure_settings.workspace_name,
        "AZURE__POLL_MIN_SECONDS": "0",
    }.items():
        monkeypatch.setenv(f"AUTOML_SERVICE_{key}", str(value))
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")

    def on_the_fake(settings: Any) -> Any:  # the workspace's cloud is the fake's
        return backend_on_fake(fake_aml, settings.azure, tmp_path / "staging")

    monkeypatch.setattr(backends, "build_backend", on_the_fake)
    capsys.readouterr()
    assert main(["rollback", ENDPOINT, "--json"]) == EXIT_OK
    printed = json.loads(capsys.readouterr().out)  # only the answer: no poller's dots
    assert printed == {
        "endpoint": ENDPOINT,
        "deployment": V1,
        "reason": f"rolled back from {V2} (houses:2)",
    }
    assert traffic(fake_aml) == {V1: 100}
    assert main(["rollback", "nope"]) == EXIT_FAILED
    assert "no endpoint 'nope'" in capsys.readouterr().err
