"""Data references for Azure AutoML: everything it trains on must be an MLTable.

A registered data asset (``azureml:name:version``) or an MLTable folder (an
``azureml://`` path, an ``https`` URI, a local folder holding an ``MLTable`` file) is used
as it is. A CSV file (local path or URI) gets a generated ``MLTable`` file in a folder of its
own; the SDK uploads that folder when the job is submitted (content-addressed, so a
re-submission uploads nothing new). The request's ``ignored_columns`` become a
``drop_columns`` transformation in that file; for data whose MLTable the service does not
write, they are refused with what to do (Azure AutoML has no setting to leave a column
out).

For the data's fingerprint (``Backend.data_versions``): ``AssetVersions`` tells the
version a floating data asset stands for, ``DatastoreETags`` what a datastore path holds
(a blob's ETag, a folder's blobs), and ``DataVersions`` asks each in turn.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ...azure_retry import WORKSPACE, RetryPolicy, call, call_with_retry, describe
from ...errors import PermanentError
from ...logs import get_logger

log = get_logger(__name__)

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

    Idempotent: the folder for a reference is named by a hash (of a local file's name and
    bytes, of a URI itself) and rewritten with the same content.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, reference: str, role: str, drop_columns: Sequence[str] = ()) -> str:
        registered = reference.startswith("azureml:") and not reference.startswith("azureml://")
        if registered or not is_csv(reference):
            return as_given(reference, role, drop_columns)  # a data asset, an MLTable folder
        if is_remote(reference):
            key = json.dumps([reference, *drop_columns]) if drop_columns else reference
        else:
            source = Path(reference)
            if not source.is_file():
                raise PermanentError(f"{role} data not found: {reference}")
            # Named by the file's name and bytes, not its path: the folder's name is part
            # of the uploaded path, so the same file staged anywhere uploads to one place.
            key = json.dumps([source.name, _file_digest(source), *drop_columns])
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        folder = self.root / f"{role}-{digest}"
        folder.mkdir(parents=True, exist_ok=True)
        if is_remote(reference):
            file_reference = reference
        else:
            shutil.copyfile(source, folder / source.name)
            file_reference = f"./{source.name}"
        (folder / "MLTable").write_text(mltable_text(file_reference, drop_columns))
        return str(folder)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: A data asset named without a version (``azureml:sales``) or by its latest one
#: (``azureml:sales@latest``): what it stands for changes when a version is added.
_FLOATING_ASSET = re.compile(r"^azureml:(?!//)([A-Za-z0-9][A-Za-z0-9._-]*)(@latest)?$")


class AssetVersions:
    """The version a floating data-asset reference stands for now, for the data's
    fingerprint: ``azureml:sales@latest`` -> ``azureml:sales:7``. A pinned reference
    (``azureml:sales:7``) names its own version and an unknown asset is left for the job
    to report, so both give None; so does any other reference (datastore paths are
    ``DatastoreETags``'s)."""

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


#: ``azureml://datastores/<datastore>/paths/<path>``: a file, or a folder (an MLTable
#: folder, say), on one of the workspace's datastores.
_DATASTORE_PATH = re.compile(r"^azureml://datastores/([^/]+)/paths/(.+)$")
#: Blobs of a folder read for its fingerprint: one listing page at the service's largest.
MAX_FOLDER_BLOBS = 5000


class DatastoreETags:
    """What an ``azureml://datastores/<ds>/paths/<path>`` reference holds now, for the
    data's fingerprint: a file's ETag (``etag:0x8DC...``), or for a folder a digest of its
    blobs' names and ETags (``blobs:<count>:<digest>``; the first ``max_blobs`` by name,
    with a warning when there are more), so a file replaced under the same path is new
    data.

    Read through the datastore's own account as the SDK reads it for an upload
    (``get_datastore_info``: the account URL from the cloud's storage endpoint, the key or
    SAS token from ``listSecrets``, else the workspace credential): two workspace calls
    and one or two storage calls, once per message (its first fingerprint is pinned).
    A missing datastore, container or path gives None (the job reports it); a transient
    failure outlasting ``policy`` raises TransientError (the message is tried again later);
    any other refusal (no read permission for this identity, a datastore type other than
    Azure Blob) gives None with a warning: the job reads the data with the workspace's
    access, which may not be this worker's. Other references give None.
    """

    def __init__(
        self,
        client: Any,
        policy: RetryPolicy | None = None,
        *,
        max_blobs: int = MAX_FOLDER_BLOBS,
    ) -> None:
        self._client = client
        self._policy = policy or WORKSPACE
        self._max_blobs = max_blobs

    def __call__(self, reference: str) -> str | None:
        from azure.core.exceptions import AzureError

        match = _DATASTORE_PATH.match(reference.strip())
        if match is None:
            return None
        datastore, path = match.group(1), match.group(2)

        def read() -> str | None:
            container = self._container(datastore)
            try:
                return self._read(container, path, reference)
            finally:
                container.close()

        try:
            return call_with_retry("datastore.etag", read, self._policy)
        except AzureError as exc:  # the SDK's and the storage SDK's errors
            if not _not_found(exc):
                log.warning(
                    "azure.data_fingerprint_unreadable",
                    reference=reference,
                    reason=f"{type(exc).__name__}: {describe(exc)}",
                )
            return None

    def _container(self, datastore: str) -> Any:
        """A ContainerClient on the datastore's container, with the account URL and the
        credential the SDK would upload with; retries are ours."""
        # The helper the SDK's own uploads go through (private: azure-ai-ml is pinned to
        # one release in pyproject.toml, and the tests run it against the fake).
        from azure.ai.ml._artifacts._artifact_utilities import get_datastore_info
        from azure.ai.ml.exceptions import MlException
        from azure.storage.blob import ContainerClient

        info = get_datastore_info(self._client.datastores, datastore)
        if info["storage_type"] != "AzureBlob":
            message = f"datastore {datastore} is {info['storage_type']}, not read here"
            raise MlException(message=message, no_personal_data_message=message)
        return ContainerClient(
            info["account_url"],
            info["container_name"],
            credential=info["credential"],
            retry_total=0,
            connection_timeout=10,
            read_timeout=30,
        )

    def _read(self, container: Any, path: str, reference: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        if not path.endswith("/"):
            try:
                etag = container.get_blob_client(path).get_blob_properties().etag
            except ResourceNotFoundError:
                pass  # no such file: a folder, or nothing
            else:
                return f"etag:{_bare(etag)}"
        prefix = path.rstrip("/") + "/"
        pages = container.list_blobs(
            name_starts_with=prefix, results_per_page=min(self._max_blobs + 1, 5000)
        )
        return folder_version(
            ((blob.name.removeprefix(prefix), blob.etag) for blob in pages),
            self._max_blobs,
            reference,
        )


def folder_version(blobs: Iterable[tuple[str, str]], max_blobs: int, reference: str) -> str | None:
    """``blobs:<count>:<digest>`` over the first ``max_blobs`` (name, ETag) pairs, in the
    listing's order (by name); None for no blobs. Logs a warning when there are more."""
    digest = hashlib.sha256()
    count = 0
    for name, etag in blobs:
        if count == max_blobs:
            log.warning(
                "azure.data_fingerprint_capped",
                reference=reference,
                blobs_read=max_blobs,
                note=f"only the first {max_blobs} blobs by name count towards the fingerprint",
            )
            return f"blobs:{count}+:{digest.hexdigest()[:32]}"
        digest.update(f"{name}\0{_bare(etag)}\n".encode())
        count += 1
    return f"blobs:{count}:{digest.hexdigest()[:32]}" if count else None


def _bare(etag: str) -> str:
    """An ETag without its quotes (blob properties quote it, listings do not)."""
    return etag.strip('"')


class DataVersions:
    """The azure backend's ``data_versions``: the first answer of ``readers`` (each gives
    None for references not its own)."""

    def __init__(self, *readers: Callable[[str], str | None]) -> None:
        self.readers = readers

    def __call__(self, reference: str) -> str | None:
        for reader in self.readers:
            version = reader(reference)
            if version is not None:
                return version
        return None
