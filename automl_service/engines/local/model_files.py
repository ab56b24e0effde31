"""``MlflowModelFiles``: the local registry's model versions as folders on this machine.

A store with local artifacts (the default) already holds each version's MLflow model
folder on disk: its path is answered as it is, nothing is copied. A store on a tracking
server has its artifacts downloaded into a fresh temporary folder by MLflow.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from ...errors import InvalidRequest, PermanentError
from ...model_ref import ModelRef
from ..base import LocalModel
from .mlflow_errors import mlflow_errors


def resolve_version(tracking_uri: str, ref: ModelRef) -> str:
    """The version ``ref`` names (the latest when it names none); InvalidRequest when the
    model, version or alias does not exist."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        if ref.alias:
            return str(client.get_model_version_by_alias(ref.name, ref.alias).version)
        if ref.version:
            return str(client.get_model_version(ref.name, ref.version).version)
        quoted = ref.name.replace("'", "\\'")
        versions = client.search_model_versions(f"name = '{quoted}'")
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise InvalidRequest(f"no registered model {ref}") from None
        with mlflow_errors(f"finding model {ref}"):
            raise
    if not versions:
        raise InvalidRequest(f"no registered model named {ref.name!r}")
    return str(max(int(v.version) for v in versions))


class MlflowModelFiles:
    """Implements ``automl_service.engines.base.ModelFiles`` on the local MLflow store."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri

    def fetch(self, ref: ModelRef) -> LocalModel:
        version = resolve_version(self.tracking_uri, ref)
        uri = self.tracking_uri
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        with mlflow_errors(f"finding model {ref.name} version {version}"):
            source = client.get_model_version_download_uri(ref.name, version)
            try:
                path = mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=uri)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    raise PermanentError(
                        f"model {ref.name} version {version}: its files are gone ({source})"
                    ) from exc
                raise
        return LocalModel(ref.name, version, Path(path))
