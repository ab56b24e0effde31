""" "Only if better" on Azure without test rows of its own: a fifth of a local CSV is held
out before the job is submitted, both parts uploaded by the real SDK into the workspace's
datastore (Azurite, through the fake's datastore routes), the job's test data the held-out
part."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from azureml_fake.fixtures import Blobstore, backend_on_fake
from azureml_fake.server import FakeAzureML

from automl_service.engines.azure.held_out import HELD_OUT_TAG, HeldOutSlice, wants_held_out
from automl_service.engines.azure.same_rows import why_no_rows
from automl_service.engines.base import Backend
from automl_service.request import AutoMLRequest, parse_request
from automl_service.settings import AzureSettings

pytest_plugins = ["azureml_fake.fixtures"]

UPLOADED = r"^azureml://datastores/workspaceblobstore/paths/(LocalUpload/[0-9a-f]+/[^/]+)/?$"


def table(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "row": range(rows),
            "x": rng.normal(size=rows).round(4),
            "label": ["a"] * (rows * 3 // 4) + ["b"] * (rows - rows * 3 // 4),
        }
    )


def make_request(request_id: str, training_data: str, **validation: Any) -> AutoMLRequest:
    return parse_request(
        json.dumps(
            {
                "request_id": request_id,
                "task": "classification",
                "training_data": training_data,
                "target_column_name": "label",
                "validation": validation,
                "registration": {"model_name": "labels"},
                "deployment": {"endpoint_name": "labels-ep", "only_if_better": True},
            }
        )
    )


def backend_on(fake: FakeAzureML, settings: AzureSettings, staging: Path) -> Backend:
    return backend_on_fake(fake, settings, staging)


def uploaded_csv(blobstore: Blobstore, uri: str) -> pd.DataFrame:
    match = re.match(UPLOADED, uri)
    assert match, uri
    container = blobstore.container
    (name,) = (
        b.name
        for b in container.list_blobs(name_starts_with=match.group(1) + "/")
        if b.name.endswith(".csv")
    )
    return pd.read_csv(container.download_blob(name))


def test_a_fifth_is_held_out_uploaded_and_named_as_the_jobs_test_data(
    fake_aml: FakeAzureML,
    workspace_blobstore: Blobstore,
    azure_settings: AzureSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    original = table()
    csv = tmp_path / "labels.csv"
    original.to_csv(csv, index=False)
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    backend = backend_on(fake_aml, azure_settings, tmp_path / "staging")

    backend.engine.ensure_job(make_request("held-1", str(csv)))

    (put,) = fake_aml.calls_to("PUT", r"/jobs/automl-held-1$")
    details = put.body["properties"]["taskDetails"]
    assert details["testData"]["jobInputType"] == "mltable"
    assert "testDataSize" not in details or details["testDataSize"] is None
    assert put.body["properties"]["tags"][HELD_OUT_TAG] == "12 of 60 rows (20%, seed 42)"
    train = uploaded_csv(workspace_blobstore, details["trainingData"]["uri"])
    test = uploaded_csv(workspace_blobstore, details["testData"]["uri"])
    # The two parts partition the original rows; the held-out one keeps the class shares.
    assert len(test) == 12 and set(train["row"]).isdisjoint(test["row"])
    both = pd.concat([train, test]).sort_values("row").reset_index(drop=True)
    pd.testing.assert_frame_equal(both, original)
    assert test["label"].value_counts().to_dict() == {"a": 9, "b": 3}

    # A crash and a resubmission (another process, a fresh staging folder): the same
    # split at the same uploaded paths, nothing new written to the datastore.
    blobs = {(b.name, b.etag) for b in workspace_blobstore.container.list_blobs()}
    again = backend_on(fake_aml, azure_settings, tmp_path / "staging-2")
    again.engine.ensure_job(make_request("held-2", str(csv)))
    (second,) = fake_aml.calls_to("PUT", r"/jobs/automl-held-2$")
    resent = second.body["properties"]["taskDetails"]
    assert resent["trainingData"]["uri"] == details["trainingData"]["uri"]
    assert resent["testData"]["uri"] == details["testData"]["uri"]
    assert {(b.name, b.etag) for b in workspace_blobstore.container.list_blobs()} == blobs


def test_the_deployer_scores_on_the_part_the_job_was_given(tmp_path: Path) -> None:
    """The deployer's view of the request names the same held-out file, whose rows are the
    ones split off (the same rule as the local trainer's)."""
    csv = tmp_path / "labels.csv"
    table().to_csv(csv, index=False)
    request = make_request("held-3", str(csv))
    submitted = HeldOutSlice(tmp_path / "a")(request)
    seen_later = HeldOutSlice(tmp_path / "a")(request)
    assert submitted == seen_later and why_no_rows(seen_later) is None
    assert submitted.validation.test_data is not None
    held = pd.read_csv(submitted.validation.test_data)
    from automl_service.engines.local.testset import split_off_test

    _, local_test = split_off_test(request, pd.read_csv(csv))
    assert local_test is not None and held["row"].tolist() == local_test["row"].tolist()


def test_no_slice_when_rows_are_named_or_the_data_is_remote(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    table().to_csv(csv, index=False)
    assert wants_held_out(make_request("r", str(csv)))
    assert not wants_held_out(make_request("r", str(csv), test_data_size=0.3))
    assert not wants_held_out(make_request("r", str(csv), test_data=str(csv)))
    remote = make_request("r", "azureml:labels:2")
    assert HeldOutSlice(tmp_path / "b")(remote) == remote
    assert "not a local file the service uploads" in (why_no_rows(remote) or "")
    assert not (tmp_path / "b").exists()
