"""Data references for Azure AutoML: everything it trains on must be an MLTable.

A registered data asset (``azureml:name:version``) or an MLTable folder (an
``azureml://`` path, an ``https`` URI, a local folder holding an ``MLTable`` file) is used
as it is. A CSV file (local path or URI) gets a generated ``MLTable`` file in a folder of its
own; the SDK uploads that folder when the job is submitted (content-addressed, so a
re-submission uploads nothing new). The request's ``ignored_columns`` become a
``drop_columns`` transformation in that file; for data whose MLTable the service does not
write, they are refused with what to do (Azure AutoML has no setting to leave a column
out).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ...azure_retry import RetryPolicy, call
from ...errors import PermanentError

MLTABLE_TEMPLATE = """\
$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json
type: mltable
paths:
  - file: {file}
transformations:
  - read_delimited:
      delimiter: ','
      encoding: utf8
      header: all_files_same_headers
      empty_as_string: false
"""

_REMOTE = ("azureml://", "https://", "http://", "wasbs://", "abfss://", "adl://")


def is_csv(reference: str) -> bool:
    return reference.split("?", 1)[0].lower().endswith((".csv", ".csv.gz"))


def is_remote(reference: str) -> bool:
    return reference.startswith(_REMOTE)


def mltable_text(file_reference: str, drop_columns: Sequence[str] = ()) -> str:
    """The MLTable YAML reading one delimited file with a header row, less
    ``drop_columns``."""
    text = MLTABLE_TEMPLATE.format(file=file_reference)
    if drop_columns:
        text += f"  - drop_columns: {json.dumps(list(drop_columns))}\n"
    return text


def refuse_dropping(reference: str, role: str, drop_columns: Sequence[str]) -> None:
    """PermanentError when columns are to be left out of data the service does not write
    the MLTable of (a data asset or an MLTable folder): Azure AutoML has no setting for
    it, the MLTable has to leave them out."""
    if drop_columns:
        raise PermanentError(
            f"ignored_columns: the {role} data {reference} is an MLTable or a data asset; "
            "leave the columns out there (a drop_columns transformation in its MLTable "
            "file), or give a CSV file, whose MLTable the service writes"
        )


class DataResolver(Protocol):
    """Turns a data reference into an MLTable path for one role (training, validation,
    test), leaving ``drop_columns`` out."""

    def __call__(self, reference: str, role: str, drop_columns: Sequence[str] = ()) -> str: ...


def as_given(reference: str, role: str, drop_columns: Sequence[str] = ()) -> str:
    """The reference as it is (it must already name an MLTable)."""
    refuse_dropping(reference, role, drop_columns)
    return reference


class MLTableStager:
    """Resolves data references to MLTable inputs, writing MLTable folders under ``root``.

    Idempotent: the folder for a reference is named by its hash and rewritten with the
    same content.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, reference: str, role: str, drop_columns: Sequence[str] = ()) -> str:
        registered = reference.startswith("azureml:") and not reference.startswith("azureml://")
        if registered or not is_csv(reference):
            return as_given(reference, role, drop_columns)  # a data asset, an MLTable folder
        key = json.dumps([reference, *drop_columns]) if drop_columns else reference
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        folder = self.root / f"{role}-{digest}"
        folder.mkdir(parents=True, exist_ok=True)
        if is_remote(reference):
            file_reference = reference
        else:
            source = Path(reference)
            if not source.is_file():
                raise PermanentError(f"{role} data not found: {reference}")
            shutil.copyfile(source, folder / source.name)
            file_reference = f"./{source.name}"
        (folder / "MLTable").write_text(mltable_text(file_reference, drop_columns))
        return str(folder)


#: A data asset named without a version (``azureml:sales``) or by its latest one
#: (``azureml:sales@latest``): what it stands for changes when a version is added.
_FLOATING_ASSET = re.compile(r"^azureml:(?!//)([A-Za-z0-9][A-Za-z0-9._-]*)(@latest)?$")


class AssetVersions:
    """The version a floating data-asset reference stands for now, for the data's
    fingerprint: ``azureml:sales@latest`` -> ``azureml:sales:7``. A pinned reference
    (``azureml:sales:7``) names its own version and an unknown asset is left for the job
    to report, so both give None; so do datastore paths and URIs, whose content the
    service does not read (see the README)."""

    def __init__(self, client: Any, policy: RetryPolicy | None = None) -> None:
        self._client = client
        self._policy = policy

    def __call__(self, reference: str) -> str | None:
        from azure.ai.ml.exceptions import MlException

        match = _FLOATING_ASSET.match(reference.strip())
        if match is None:
            return None
        name = match.group(1)

        def latest() -> str | None:
            try:
                return str(self._client.data.get(name=name, label="latest").version)
            except MlException as exc:  # the SDK's wrapping of a 404, or another failure
                if _not_found(exc):
                    return None
                raise

        version = call("data.get", latest, policy=self._policy)
        return None if version is None else f"azureml:{name}:{version}"


def _not_found(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception it was raised from is a 404."""
    from azure.core.exceptions import ResourceNotFoundError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ResourceNotFoundError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
