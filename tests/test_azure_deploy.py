"""Blue/green deployment on managed online endpoints, through the real SDK and the fake."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azureml_fake.fixtures import roll_out
from azureml_fake.server import FakeAzureML
from fixtures_retry import FAST

from automl_service.engines.azure.deployer import AzureDeployer
from automl_service.engines.azure.promotion import (
    check_instances,
    compare_with_live,
    deployment_name,
    model_reference,
)
from automl_service.engines.azure.registry import model_path
from automl_service.errors import NotReady, PermanentError
from automl_service.metrics import Goal
from automl_service.request import AutoMLRequest, parse_request
from automl_service.runs import ModelVersion
from automl_service.tags import alias_tag

pytest_plugins = ["azureml_fake.fixtures"]

TAGS = "automl_service"


def make_request(only_if_better: bool = False, **deployment: Any) -> AutoMLRequest:
    spec = {"endpoint_name": "houses-ep", "only_if_better": only_if_better, **deployment}
    return parse_request(
        json.dumps(
            {
                "request_id": "r-9",
                "task": "regression",
                "training_data": "azureml:houses:2",
                "target_column_name": "price",
                "primary_metric": "r2_score",
                "registration": {"model_name": "houses"},
                "deployment": spec,
            }
        )
    )


def live_tags(value: float) -> dict[str, str]:
    return {
        f"{TAGS}.metric": "r2_score",
        f"{TAGS}.metric_value": repr(value),
        f"{TAGS}.goal": "maximize",
    }


def test_names_and_policy_are_pure() -> None:
    """Deployment names follow the model version; ids parse; instance policy is enforced."""
    assert deployment_name("houses", "3") == deployment_name("houses", "3")
    assert deployment_name("houses", "3") != deployment_name("houses", "4")
    assert len(deployment_name("x" * 200, "123456789")) <= 32
    assert model_reference("azureml:houses:3") == ("houses", "3")
    assert model_reference(
        "/subscriptions/s/resourceGroups/r/providers/x/workspaces/w/models/houses/versions/3"
    ) == ("houses", "3")
    check_instances("Standard_DS3_v2", 2, ["standard_ds3_v2"], 4)
    with pytest.raises(PermanentError, match="not allowed"):
        check_instances("Standard_NC24", 1, ["Standard_DS3_v2"], 4)
    with pytest.raises(PermanentError, match="over the limit"):
        check_instances("Standard_DS3_v2", 5, [], 4)


def test_only_if_better_compares_in_the_metric_direction() -> None:
    """A higher r2 replaces a lower one; a lower NRMSE replaces a higher one; ties do not."""
    assert compare_with_live(0.9, "r2_score", Goal.MAXIMIZE, "m:1", live_tags(0.8)).promote
    assert not compare_with_live(0.8, "r2_score", Goal.MAXIMIZE, "m:1", live_tags(0.8)).promote
    nrmse = {
        f"{TAGS}.metric": "normalized_root_mean_squared_error",
        f"{TAGS}.metric_value": "0.2",
        f"{TAGS}.goal": "minimize",
    }
    metric = "normalized_root_mean_squared_error"
    assert compare_with_live(0.1, metric, Goal.MINIMIZE, "m:1", nrmse).promote
    assert not compare_with_live(0.3, metric, Goal.MINIMIZE, "m:1", nrmse).promote
    assert compare_with_live(0.1, "r2_score", Goal.MAXIMIZE, "m:1", {}).promote


def test_first_rollout_creates_endpoint_deployment_and_moves_traffic(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """An empty workspace ends with a key-auth endpoint sending all traffic to the model."""
    model = ModelVersion("houses", "1")
    endpoint = roll_out(AzureDeployer(ml_client, policy=FAST), make_request(), model)
    target = deployment_name("houses", "1")
    assert endpoint.promoted and endpoint.deployment == target
    assert endpoint.scoring_uri.endswith("/score")
    ep_puts = fake_aml.calls_to("PUT", r"/onlineEndpoints/houses-ep$")
    assert ep_puts[0].body["properties"]["authMode"] == "Key"
    assert ep_puts[-1].body["properties"]["traffic"] == {target: 100}
    dep_put = fake_aml.calls_to("PUT", r"/deployments/")[0].body
    assert dep_put["properties"]["model"].endswith("/models/houses/versions/1")
    assert dep_put["properties"]["instanceType"] == "Standard_DS3_v2"
    assert dep_put["sku"]["capacity"] == 1
    assert fake_aml.endpoints["houses-ep"]["properties"]["traffic"] == {target: 100}


def test_blue_green_switch_removes_the_old_deployment_after_traffic_moves(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """Traffic moves only once the new deployment is ready; the old one goes after."""
    fake_aml.add_live_deployment("houses-ep", "blue", "azureml:houses:1")
    fake_aml.deployment_delay = 1.5
    deployer = AzureDeployer(ml_client, policy=FAST)
    model = ModelVersion("houses", "2")
    with pytest.raises(NotReady, match="being created"):
        deployer.deploy(make_request(), model, 0.9)
    with pytest.raises(NotReady, match="Creating"):
        deployer.deploy(make_request(), model, 0.9)
    assert fake_aml.endpoints["houses-ep"]["properties"]["traffic"] == {"blue": 100}
    assert ("houses-ep", "blue") in fake_aml.deployments
    import time

    time.sleep(1.6)
    endpoint = roll_out(deployer, make_request(), model)
    assert endpoint.deployment == deployment_name("houses", "2")
    assert fake_aml.calls_to("DELETE", r"/deployments/blue$")
    # Deleting is long-running: the old deployment reads Deleting, then is gone.
    blue = fake_aml.deployments[("houses-ep", "blue")]
    assert blue["properties"]["provisioningState"] == "Deleting"
    assert roll_out(deployer, make_request(), model) == endpoint  # re-applying is a no-op
    assert len(fake_aml.calls_to("DELETE", r"/deployments/blue$")) == 1  # not asked again
    time.sleep(fake_aml.delete_delay + 0.1)
    assert fake_aml.handle("GET", f"{fake_aml.ws_path}/onlineEndpoints/houses-ep/deployments/blue",
                           {"api-version": "2023-04-01-preview"}, None)[0] == 404  # fmt: skip


def test_only_if_better_leaves_a_better_live_model_alone(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """A new model worse than the live one's registered metric creates nothing and says so."""
    fake_aml.add_model_version("houses", "1", live_tags(0.95))
    fake_aml.add_live_deployment("houses-ep", "blue", "azureml:houses:1")
    endpoint = AzureDeployer(ml_client, policy=FAST).deploy(
        make_request(only_if_better=True), ModelVersion("houses", "2"), 0.9
    )
    assert not endpoint.promoted and endpoint.deployment == "blue"
    assert "not better" in endpoint.reason
    assert not fake_aml.calls_to("PUT", r"/deployments/")
    assert fake_aml.endpoints["houses-ep"]["properties"]["traffic"] == {"blue": 100}


def test_only_if_better_promotes_a_better_model(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """A new model better than the live one takes all traffic."""
    fake_aml.add_model_version("houses", "1", live_tags(0.5))
    fake_aml.add_live_deployment("houses-ep", "blue", "azureml:houses:1")
    endpoint = roll_out(
        AzureDeployer(ml_client, policy=FAST),
        make_request(only_if_better=True),
        ModelVersion("houses", "2"),
    )
    assert endpoint.promoted and endpoint.deployment == deployment_name("houses", "2")


def test_failed_deployment_fails_the_request_and_keeps_traffic(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """A deployment that ends Failed is a permanent failure; live traffic stays put."""
    fake_aml.add_live_deployment("houses-ep", "blue", "azureml:houses:1")
    fake_aml.deployment_outcome = "Failed"
    with pytest.raises(PermanentError, match="Failed"):
        roll_out(AzureDeployer(ml_client, policy=FAST), make_request(), ModelVersion("houses", "2"))
    assert fake_aml.endpoints["houses-ep"]["properties"]["traffic"] == {"blue": 100}


def test_deployment_that_never_becomes_ready_times_out(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """A deployment still provisioning after the timeout fails the request, traffic kept."""
    fake_aml.add_live_deployment("houses-ep", "blue", "azureml:houses:1")
    fake_aml.deployment_delay = float("inf")
    now = [1000.0]
    deployer = AzureDeployer(ml_client, policy=FAST, timeout_seconds=600, clock=lambda: now[0])
    model = ModelVersion("houses", "2")
    for _ in range(3):
        with pytest.raises(NotReady):
            deployer.deploy(make_request(), model, 0.9)
        now[0] += 100
    now[0] += 600
    with pytest.raises(PermanentError, match="still Creating"):
        deployer.deploy(make_request(), model, 0.9)
    assert fake_aml.endpoints["houses-ep"]["properties"]["traffic"] == {"blue": 100}


def test_instance_policy_refuses_before_any_call(fake_aml: FakeAzureML, ml_client: Any) -> None:
    """A request over the instance limit fails without touching the workspace."""
    deployer = AzureDeployer(ml_client, policy=FAST, max_instance_count=2)
    with pytest.raises(PermanentError, match="over the limit"):
        deployer.deploy(make_request(instance_count=3), ModelVersion("houses", "1"), 0.9)
    assert not fake_aml.calls


@pytest.mark.parametrize(
    ("auth_mode", "sent"), [("key", "Key"), ("aml_token", "AMLToken"), ("aad_token", "AADToken")]
)
def test_new_endpoint_uses_the_requested_auth_mode(
    fake_aml: FakeAzureML, ml_client: Any, auth_mode: str, sent: str
) -> None:
    """A missing endpoint is created with the request's auth mode, and nothing else yet."""
    deployer = AzureDeployer(ml_client, policy=FAST)
    with pytest.raises(NotReady, match="being created"):
        deployer.deploy(make_request(auth_mode=auth_mode), ModelVersion("houses", "1"), 0.9)
    (put,) = fake_aml.calls_to("PUT", r"/onlineEndpoints/houses-ep$")
    assert put.body["properties"]["authMode"] == sent
    assert not fake_aml.calls_to("PUT", r"/deployments/")


def test_the_served_version_gets_the_champion_tag_from_the_one_it_replaces(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """Once traffic is on the new version, it carries the champion alias tag and the
    version it replaced does not; re-applying writes nothing more."""
    champion = alias_tag("champion")
    paths = {v: model_path(f"automl-r-{v}_0") for v in ("1", "2")}
    fake_aml.add_model_version("houses", "1", {champion: "100.0"}, paths["1"])
    fake_aml.add_model_version("houses", "2", {"owner": "pricing"}, paths["2"])
    fake_aml.add_live_deployment("houses-ep", "blue", "azureml:houses:1")
    deployer = AzureDeployer(ml_client, policy=FAST, clock=lambda: 200.0)
    model = ModelVersion("houses", "2")
    roll_out(deployer, make_request(), model)
    tags = {v: fake_aml.models["houses"][v]["properties"]["tags"] for v in ("1", "2")}
    assert tags["2"] == {"owner": "pricing", champion: "200.0"}
    assert tags["1"] == {}
    stored = fake_aml.models["houses"]["2"]["properties"]["modelUri"]
    assert stored == fake_aml.stored_model_uri(paths["2"])  # the path is left as it was
    writes = len(fake_aml.calls_to("PUT", r"/models/"))
    roll_out(deployer, make_request(), model)
    assert len(fake_aml.calls_to("PUT", r"/models/")) == writes == 2
