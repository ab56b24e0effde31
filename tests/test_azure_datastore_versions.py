"""On the azure backend a datastore path is fingerprinted by what it holds: a file's ETag,
a folder's blobs and their ETags, read through the datastore's own account as the SDK
reads it. A new blob under the same path is a new request; a message redelivered stays
the request it was. The real SDK against the loopback fake, the data on Azurite."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from azureml_fake.fixtures import Blobstore, ml_client_for
from azureml_fake.server import FakeAzureML
from fixtures_azurite import ACCOUNT, Azurite, FlakyProxy
from fixtures_retry import FAST
from structlog.testing import capture_logs

from automl_service.engines.azure.data import (
    AssetVersions,
    DatastoreETags,
    DataVersions,
    folder_version,
)
from automl_service.errors import TransientError
from automl_service.fingerprint import data_fingerprint, pinned_fingerprints, stamped
from automl_service.request import parse_request
from automl_service.result_store import SqliteResultStore
from automl_service.settings import AzureSettings

pytest_plugins = ["azureml_fake.fixtures"]

FILE = "azureml://datastores/workspaceblobstore/paths/churn/churn.csv"
FOLDER = "azureml://datastores/workspaceblobstore/paths/tables/churn/"


@pytest.fixture
def client(
    fake_aml: FakeAzureML,
    workspace_blobstore: Blobstore,
    azure_settings: AzureSettings,
    credential: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """An MLClient built after the datastore (its cloud names Azurite)."""
    return ml_client_for(fake_aml, azure_settings, credential, monkeypatch)


def body(training: str) -> str:
    return json.dumps(
        {"task": "classification", "training_data": training, "target_column_name": "y"}
    )


def datastore_gets(fake: FakeAzureML) -> int:
    return len(fake.calls_to("GET", r"/datastores/"))


def test_a_file_is_known_by_its_etag_and_new_bytes_are_a_new_request(
    client: Any, workspace_blobstore: Blobstore
) -> None:
    blobs = workspace_blobstore.container
    blobs.upload_blob("churn/churn.csv", b"x,y\n1,a\n")
    etags = DatastoreETags(client, FAST)
    first = etags(FILE)
    assert first is not None and first.startswith("etag:0x")
    assert etags(FILE) == first  # nothing changed: the same version
    request = parse_request(body(FILE))
    before = data_fingerprint(request, etags)
    assert before is not None and data_fingerprint(request, etags) == before

    blobs.upload_blob("churn/churn.csv", b"x,y\n1,a\n2,b\n", overwrite=True)
    assert etags(FILE) not in (None, first)
    after = data_fingerprint(request, etags)
    assert after not in (None, before)
    assert stamped(request, before).id != stamped(request, after).id


def test_a_folder_is_known_by_its_blobs_and_their_etags(
    client: Any, workspace_blobstore: Blobstore
) -> None:
    blobs = workspace_blobstore.container
    blobs.upload_blob("tables/churn/MLTable", b"paths:\n  - file: ./churn.csv\n")
    blobs.upload_blob("tables/churn/churn.csv", b"x,y\n1,a\n")
    blobs.upload_blob("tables/churnier/other.csv", b"not in the folder\n")
    etags = DatastoreETags(client, FAST)
    first = etags(FOLDER)
    assert first is not None and first.startswith("blobs:2:")
    assert etags(FOLDER.rstrip("/")) == first  # a folder named without its slash
    assert etags(FOLDER) == first

    blobs.upload_blob("tables/churn/churn.csv", b"x,y\n1,a\n2,b\n", overwrite=True)
    second = etags(FOLDER)
    assert second not in (None, first)
    blobs.upload_blob("tables/churn/more.csv", b"x,y\n3,c\n")
    assert etags(FOLDER) not in (None, first, second)


def test_a_missing_path_or_datastore_gives_none_and_other_references_ask_nothing(
    fake_aml: FakeAzureML, client: Any
) -> None:
    etags = DatastoreETags(client, FAST)
    assert etags("azureml://datastores/workspaceblobstore/paths/nothing/here.csv") is None
    assert etags("azureml://datastores/workspaceblobstore/paths/nothing/") is None
    assert etags("azureml://datastores/nosuchstore/paths/churn/churn.csv") is None
    asked = len(fake_aml.calls)
    for reference in ("azureml:churn:3", "azureml:churn@latest", "https://example.org/a.csv"):
        assert etags(reference) is None
    assert len(fake_aml.calls) == asked


def test_a_refused_read_gives_none_with_a_warning(
    fake_aml: FakeAzureML, client: Any, workspace_blobstore: Blobstore
) -> None:
    """A key the account refuses (this identity may not read what the job can): no
    fingerprint, said in the log, and the request goes on as before."""
    wrong = base64.b64encode(b"not the account key").decode()
    container = workspace_blobstore.container.container_name
    fake_aml.add_datastore("refused", ACCOUNT, container, key=wrong)
    workspace_blobstore.container.upload_blob("churn/churn.csv", b"x,y\n1,a\n")
    with capture_logs() as logs:
        version = DatastoreETags(client, FAST)("azureml://datastores/refused/paths/churn/churn.csv")
    assert version is None
    (warning,) = [e for e in logs if e["event"] == "azure.data_fingerprint_unreadable"]
    assert "403" in warning["reason"]
    assert wrong not in json.dumps(logs, default=str)  # no secret in the log


def test_a_transient_failure_raises_once_retries_are_spent(
    fake_aml: FakeAzureML, client: Any, workspace_blobstore: Blobstore
) -> None:
    workspace_blobstore.container.upload_blob("churn/churn.csv", b"x,y\n1,a\n")
    fake_aml.fail("GET", r"/datastores/workspaceblobstore$", 503, times=FAST.attempts)
    with pytest.raises(TransientError):
        DatastoreETags(client, FAST)(FILE)
    assert DatastoreETags(client, FAST)(FILE) is not None  # and it answers once it is back


def test_storage_resets_are_retried_then_raise(
    fake_aml: FakeAzureML,
    workspace_blobstore: Blobstore,
    azurite_blob: Azurite,
    azure_settings: AzureSettings,
    credential: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The storage account behind a proxy that resets connections: a few resets are
    retried away, a reset on every attempt raises TransientError."""
    workspace_blobstore.container.upload_blob("churn/churn.csv", b"x,y\n1,a\n")
    proxy = FlakyProxy(azurite_blob.port, ["reset", "reset"])
    try:
        fake_aml.storage_endpoint = f"core.localhost:{proxy.port}"
        client = ml_client_for(fake_aml, azure_settings, credential, monkeypatch)
        assert DatastoreETags(client, FAST)(FILE) is not None
        assert proxy.connections >= 3
        proxy.after = "reset"
        with pytest.raises(TransientError):
            DatastoreETags(client, FAST)(FILE)
    finally:
        proxy.close()


def test_a_redelivered_message_keeps_its_first_fingerprint_without_reading_again(
    fake_aml: FakeAzureML, client: Any, workspace_blobstore: Blobstore, tmp_path: Path
) -> None:
    blobs = workspace_blobstore.container
    blobs.upload_blob("churn/churn.csv", b"x,y\n1,a\n")
    fingerprint = pinned_fingerprints(
        SqliteResultStore(tmp_path / "r.db"),
        DataVersions(AssetVersions(client, FAST), DatastoreETags(client, FAST)),
    )
    request = parse_request(body(FILE))
    first = fingerprint("message-1", request)
    assert first is not None
    asked = datastore_gets(fake_aml)
    blobs.upload_blob("churn/churn.csv", b"x,y\n1,a\n2,b\n", overwrite=True)
    assert fingerprint("message-1", request) == first  # the same message: the same request
    assert datastore_gets(fake_aml) == asked  # and the pin was read, not the datastore
    assert fingerprint("message-2", request) not in (None, first)  # sent again: new data


def test_a_folder_of_more_blobs_than_the_cap_is_fingerprinted_by_the_first_ones() -> None:
    blobs = [(f"part-{i:03d}.csv", f"0x{i:04X}") for i in range(5)]
    with capture_logs() as logs:
        capped = folder_version(iter(blobs), 3, "azureml://datastores/d/paths/big/")
    assert capped is not None and capped.startswith("blobs:3+:")
    (warning,) = [e for e in logs if e["event"] == "azure.data_fingerprint_capped"]
    assert warning["blobs_read"] == 3
    assert folder_version(iter(blobs[:3]), 3, "r") == capped.replace("3+", "3")
    assert folder_version(iter([]), 3, "r") is None
    changed = [*blobs[:2], ("part-002.csv", "0xFFFF"), *blobs[3:]]
    assert folder_version(iter(changed), 3, "r") != capped


def test_the_backend_reads_assets_and_datastore_paths() -> None:
    calls: list[str] = []

    def asset(reference: str) -> str | None:
        calls.append(f"asset {reference}")
        return "azureml:a:2" if reference == "azureml:a" else None

    def path(reference: str) -> str | None:
        calls.append(f"path {reference}")
        return "etag:0x1" if reference.startswith("azureml://") else None

    versions = DataVersions(asset, path)
    assert versions("azureml:a") == "azureml:a:2"
    assert versions("azureml://datastores/d/paths/f.csv") == "etag:0x1"
    assert versions("azureml:b:1") is None
    assert calls[0] == "asset azureml:a" and len(calls) == 5
