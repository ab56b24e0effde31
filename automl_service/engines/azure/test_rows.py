"""``AzureTestRows``: the table a request's ``validation.test_data`` names, read here.

What an Azure AutoML job was given as its test data is read back on this machine, so that
a new model and the live one can be scored on the same rows:

- a local CSV or Parquet file, or a local MLTable folder, as the local backend reads it;
- ``azureml://datastores/<datastore>/paths/<file or folder>`` (or the long form naming
  the workspace): the blobs under that path, downloaded with the SDK's own datastore
  download (the datastore's account and key or SAS token from ``listSecrets``);
- ``azureml:NAME:VERSION`` (or ``azureml:NAME@latest``): the data asset's path, read
  back by the SDK's ``data.get``, then downloaded as above (an MLTable folder whose
  ``paths`` are files beside it, or a file).

The download goes into a temporary folder under ``scratch_dir``, removed once read.
Other references (``https://`` URIs and the like) are not read: ``read`` returns None.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...azure_retry import RetryPolicy, call
from ...errors import PermanentError
from ...logs import get_logger
from .data import is_remote

if TYPE_CHECKING:
    import pandas as pd

log = get_logger(__name__)

#: ``azureml:NAME:VERSION``, ``azureml:NAME@LABEL`` or ``azureml:NAME``: a data asset.
_ASSET = re.compile(
    r"^azureml:(?!//)(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?::(?P<version>[A-Za-z0-9._-]+)|@(?P<label>[A-Za-z0-9._-]+))?$"
)
#: A path on one of the workspace's datastores, short or long form.
_DATASTORE_URI = re.compile(r"^azureml://(?:subscriptions/.+/)?datastores/[^/]+/paths/.+$")


def readable_here(reference: str) -> bool:
    """Whether ``AzureTestRows`` reads ``reference`` (pure: by its form alone)."""
    reference = reference.strip()
    if _ASSET.match(reference) or _DATASTORE_URI.match(reference):
        return True
    return not is_remote(reference)


class AzureTestRows:
    """Reads test tables named by local paths, datastore URIs and data assets."""

    def __init__(
        self, ml_client: Any, scratch_dir: Path, *, policy: RetryPolicy | None = None
    ) -> None:
        self._client = ml_client
        self._scratch = scratch_dir
        self._policy = policy

    def read(self, reference: str) -> pd.DataFrame | None:
        """The table, or None for a reference not read here. Raises PermanentError when
        it names nothing or cannot be read, TransientError when the workspace or the
        storage account is busy or unreachable."""
        from ..local.datasets import load_table

        reference = reference.strip()
        if not readable_here(reference):
            return None
        asset = _ASSET.match(reference)
        if asset is None and not _DATASTORE_URI.match(reference):
            return load_table(reference)
        uri = reference if asset is None else self._asset_path(asset)
        self._scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="test-rows-", dir=self._scratch) as folder:
            return load_table(str(self._download(uri, Path(folder))))

    def _asset_path(self, asset: re.Match[str]) -> str:
        name, version, label = asset["name"], asset["version"], asset["label"]
        if version is None:
            label = label or "latest"
        found = call(
            "data.get", self._client.data.get, name=name, version=version, label=label,
            policy=self._policy,
        )  # fmt: skip
        path = str(getattr(found, "path", "") or "")
        if not _DATASTORE_URI.match(path):
            raise PermanentError(
                f"test data {asset.group(0)}: its path {path!r} is not on a datastore of "
                "the workspace, so it is not read here"
            )
        return path

    def _download(self, uri: str, into: Path) -> Path:
        """The downloaded file (a datastore path naming one) or folder."""
        # The SDK's own datastore download (azure-ai-ml is pinned in pyproject.toml).
        from azure.ai.ml._artifacts._artifact_utilities import download_artifact_from_aml_uri

        log.info("azure.test_rows_downloading", uri=uri)
        call(
            "datastore.download",
            download_artifact_from_aml_uri,
            uri,
            str(into),
            self._client.datastores,
            policy=self._policy,
        )
        leaf = into / uri.rstrip("/").rsplit("/", 1)[-1]
        if leaf.is_file():
            return leaf
        if not any(into.iterdir()):
            raise PermanentError(f"test data {uri}: nothing is stored there")
        return into
