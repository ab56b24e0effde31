"""A local CSV as training data on the azure backend: the service stages it as an MLTable
folder, and the real SDK uploads that folder into the workspace's default datastore (on
Azurite's blob service, through the fake's datastore routes) when the job is submitted;
the job names the uploaded path."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from azureml_fake.fixtures import Blobstore, backend_on_fake
from azureml_fake.server import FakeAzureML

from automl_service.engines.base import JobState
from automl_service.request import parse_request
from automl_service.settings import AzureSettings

pytest_plugins = ["azureml_fake.fixtures"]

CSV = b"sepal_length,sepal_width,species\n5.1,3.5,setosa\n7.0,3.2,versicolor\n"
UPLOADED = r"^azureml://datastores/workspaceblobstore/paths/(LocalUpload/[0-9a-f]+/[^/]+)/?$"


def test_a_local_csv_is_uploaded_to_the_datastore_and_the_job_names_it(
    fake_aml: FakeAzureML,
    workspace_blobstore: Blobstore,
    azure_settings: AzureSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    csv = tmp_path / "iris.csv"
    csv.write_bytes(CSV)
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    backend = backend_on_fake(
        fake_aml, azure_settings, tmp_path / "staging"
    )  # built after the datastore: the cloud names Azurite
    request = parse_request(
        json.dumps(
            {
                "request_id": "local-csv",
                "task": "classification",
                "training_data": str(csv),
                "target_column_name": "species",
            }
        )
    )

    status = backend.engine.ensure_job(request)

    assert status.state is JobState.QUEUED
    # The SDK found the datastore and its key through the fake's datastore routes.
    assert fake_aml.calls_to("GET", r"/datastores/workspaceblobstore$")
    assert fake_aml.calls_to("POST", r"/datastores/workspaceblobstore/listSecrets$")
    (put,) = fake_aml.calls_to("PUT", r"/jobs/automl-local-csv$")
    training = put.body["properties"]["taskDetails"]["trainingData"]
    assert training["jobInputType"] == "mltable"
    match = re.match(UPLOADED, training["uri"])
    assert match, training["uri"]
    folder = match.group(1)
    container = workspace_blobstore.container
    uploaded = {b.name for b in container.list_blobs(name_starts_with=folder + "/")}
    assert uploaded == {f"{folder}/iris.csv", f"{folder}/MLTable"}
    assert container.download_blob(f"{folder}/iris.csv").readall() == CSV
    mltable = container.download_blob(f"{folder}/MLTable").readall().decode()
    assert "file: ./iris.csv" in mltable

    # The same file in another request: the upload is content-addressed, nothing new is
    # written and both jobs name the same folder.
    blobs = {(b.name, b.etag) for b in container.list_blobs()}
    backend.engine.ensure_job(request.model_copy(update={"request_id": "local-csv-2"}))
    (again,) = fake_aml.calls_to("PUT", r"/jobs/automl-local-csv-2$")
    assert again.body["properties"]["taskDetails"]["trainingData"]["uri"] == training["uri"]
    assert {(b.name, b.etag) for b in container.list_blobs()} == blobs


def test_the_fake_serves_datastores_as_the_sdk_reads_them(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    """Get, the default one, and an account key only through listSecrets (no Azurite)."""
    fake_aml.add_datastore("workspaceblobstore", "acct", "blobs", key="k3y", default=True)
    fake_aml.add_datastore("identity", "acct2", "data")
    default = ml_client.datastores.get_default()
    assert (default.name, default.account_name, default.container_name) == (
        "workspaceblobstore",
        "acct",
        "blobs",
    )
    assert getattr(default.credentials, "account_key", None) is None  # no secret on a GET
    assert ml_client.datastores._list_secrets(name="workspaceblobstore").key == "k3y"
    identity = ml_client.datastores.get("identity")
    assert type(identity.credentials).__name__ == "NoneCredentialConfiguration"
    assert not fake_aml.calls_to("POST", r"/datastores/identity/listSecrets")
    with pytest.raises(Exception, match="could not be found"):
        ml_client.datastores.get("missing")
