"""On the azure backend a data asset named by its latest version is fingerprinted by the
version it stands for: a new version is a new request; a message redelivered stays the
request it was, without asking again. The real SDK against the loopback fake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from azureml_fake.server import FakeAzureML

from automl_service.engines.azure.data import AssetVersions
from automl_service.fingerprint import data_fingerprint, pinned_fingerprints, stamped
from automl_service.request import parse_request
from automl_service.result_store import SqliteResultStore

pytest_plugins = ["azureml_fake.fixtures"]


def body(training: str) -> str:
    return json.dumps(
        {"task": "classification", "training_data": training, "target_column_name": "y"}
    )


def data_gets(fake: FakeAzureML) -> int:
    return sum(1 for c in fake.control_plane_calls() if "/data/" in c.path)


def test_latest_stands_for_its_version_and_a_new_version_is_a_new_request(
    fake_aml: FakeAzureML, ml_client: Any
) -> None:
    versions = AssetVersions(ml_client)
    fake_aml.add_data_version("sales", "1", "azureml://datastores/d/paths/sales/v1/")
    assert versions("azureml:sales@latest") == "azureml:sales:1"
    assert versions("azureml:sales") == "azureml:sales:1"
    request = parse_request(body("azureml:sales@latest"))
    first = data_fingerprint(request, versions)
    assert first is not None

    fake_aml.add_data_version("sales", "2", "azureml://datastores/d/paths/sales/v2/")
    assert versions("azureml:sales@latest") == "azureml:sales:2"
    second = data_fingerprint(request, versions)
    assert second not in (None, first)
    assert stamped(request, first).id != stamped(request, second).id

    # A pinned version names itself; unknown assets are left for the job to report.
    calls = data_gets(fake_aml)
    for reference in ("azureml:sales:1", "azureml://datastores/d/paths/sales/v1/"):
        assert versions(reference) is None
    assert data_gets(fake_aml) == calls
    assert versions("azureml:nothing@latest") is None


def test_a_redelivered_message_keeps_its_first_version_without_asking_again(
    fake_aml: FakeAzureML, ml_client: Any, tmp_path: Path
) -> None:
    fake_aml.add_data_version("sales", "1", "azureml://datastores/d/paths/sales/v1/")
    fingerprint = pinned_fingerprints(
        SqliteResultStore(tmp_path / "r.db"), AssetVersions(ml_client)
    )
    request = parse_request(body("azureml:sales@latest"))
    first = fingerprint("message-1", request)
    asked = data_gets(fake_aml)
    fake_aml.add_data_version("sales", "2", "azureml://datastores/d/paths/sales/v2/")
    assert fingerprint("message-1", request) == first  # the same message: the same request
    assert data_gets(fake_aml) == asked  # and the pin was read, not the workspace
    assert fingerprint("message-2", request) not in (None, first)  # sent again: new data
