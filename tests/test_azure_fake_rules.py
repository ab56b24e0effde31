"""The loopback fake of Azure ML refuses what Azure refuses (each rule's evidence is in
tests/azureml_fake/server.py), so the service's Azure path is tested against those
refusals and not against a kinder server."""

from __future__ import annotations

from typing import Any

from azureml_fake.server import API_VERSIONS, FakeAzureML

pytest_plugins = ["azureml_fake.fixtures"]


def call(fake: FakeAzureML, method: str, tail: str, kind: str, body: Any = None) -> Any:
    version = sorted(API_VERSIONS[kind])[0]
    return fake.handle(method, f"{fake.ws_path}/{tail}", {"api-version": version}, body)


def test_an_api_version_the_sdk_does_not_send_is_refused(fake_aml: FakeAzureML) -> None:
    status, _, answer = fake_aml.handle(
        "GET", f"{fake_aml.ws_path}/jobs/j", {"api-version": "2099-01-01"}, None
    )
    assert status == 400 and answer["error"]["code"] == "NoRegisteredProviderFound"
    assert call(fake_aml, "GET", "jobs/j", "jobs")[0] == 404  # a version it sends: served


def test_traffic_goes_only_to_deployments_that_exist_and_away_before_a_delete(
    fake_aml: FakeAzureML,
) -> None:
    fake_aml.add_live_deployment("ep", "blue", "azureml:m:1")
    body = {"location": "westeurope", "properties": {"authMode": "Key", "traffic": {"green": 100}}}
    status, _, answer = call(fake_aml, "PUT", "onlineEndpoints/ep", "onlineEndpoints", body)
    assert status == 400 and "green" in answer["error"]["message"]
    status, _, answer = call(
        fake_aml, "DELETE", "onlineEndpoints/ep/deployments/blue", "deployments"
    )
    assert status == 400 and "has traffic" in answer["error"]["message"]


def test_a_job_and_a_model_versions_path_cannot_be_changed(fake_aml: FakeAzureML) -> None:
    job = {"properties": {"jobType": "AutoML", "computeId": "c1", "tags": {"a": "1"}}}
    assert call(fake_aml, "PUT", "jobs/j", "jobs", job)[0] == 201
    retagged = {"properties": {**job["properties"], "tags": {"a": "2"}}}
    status, _, answer = call(fake_aml, "PUT", "jobs/j", "jobs", retagged)
    assert status == 200 and answer["properties"]["tags"] == {"a": "2"}
    moved = {"properties": {**job["properties"], "computeId": "c2"}}
    status, _, answer = call(fake_aml, "PUT", "jobs/j", "jobs", moved)
    assert status == 400 and "computeId" in answer["error"]["message"]

    fake_aml.add_model_version("m", "1", {}, "p/1")
    again = {"properties": {"modelUri": "p/2", "tags": {}}}
    status, _, answer = call(fake_aml, "PUT", "models/m/versions/1", "models", again)
    assert status == 400 and answer["error"]["message"] == "Asset paths cannot be updated."


def test_no_deployment_is_written_while_its_endpoint_is_provisioning(
    fake_aml: FakeAzureML,
) -> None:
    fake_aml.endpoint_delay = 60.0
    body = {"location": "westeurope", "properties": {"authMode": "Key"}}
    assert call(fake_aml, "PUT", "onlineEndpoints/ep", "onlineEndpoints", body)[0] == 201
    deployment = {"location": "westeurope", "properties": {"model": "azureml:m:1"}}
    status, _, answer = call(
        fake_aml, "PUT", "onlineEndpoints/ep/deployments/d", "deployments", deployment
    )
    assert status == 409 and "is Creating" in answer["error"]["message"]
