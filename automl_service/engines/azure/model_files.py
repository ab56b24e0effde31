"""``AzureModelFiles``: workspace model versions as MLflow model folders on this machine.

The version is resolved first: ``NAME:VERSION`` as it is (no call when its folder is in
the cache already: a version's files never change), ``NAME`` as its highest active
version and ``NAME@ALIAS`` as the version holding the alias tag (``tags.alias_tag``; the
Azure deployer gives ``champion`` to the version an endpoint serves), each in one model
listing. The files are then downloaded once with the SDK's ``models.download`` (the
model's datastore, ``listSecrets`` and blob reads) into a ``ModelCache`` under the data
folder, one folder per workspace, name and version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ...azure_retry import RetryPolicy, call, get_or_none
from ...errors import InvalidRequest
from ...logs import get_logger
from ...model_ref import ModelRef
from ...tags import alias_tag
from ..base import LocalModel
from .model_cache import ModelCache
from .model_versions import alias_holder, latest_version

log = get_logger(__name__)


def workspace_folder(client: Any) -> str:
    """A folder name for the client's workspace: its name and a digest of its full id,
    so that two workspaces' versions never share an entry."""
    key = "/".join(
        str(getattr(client, attr, "") or "")
        for attr in ("subscription_id", "resource_group_name", "workspace_name")
    )
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in str(client.workspace_name))
    return f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class AzureModelFiles:
    """Implements ``automl_service.engines.base.ModelFiles`` on an Azure ML workspace.
    ``downloads`` counts the downloads made."""

    def __init__(
        self, ml_client: Any, cache_root: Path, *, policy: RetryPolicy | None = None
    ) -> None:
        self._client = ml_client
        self.cache = ModelCache(cache_root / workspace_folder(ml_client))
        self._policy = policy
        self.downloads = 0

    def fetch(self, ref: ModelRef) -> LocalModel:
        version = ref.version
        if version is None or self.cache.get(ref.name, version) is None:
            version = self.resolve(ref)
        cached = self.cache.get(ref.name, version)
        if cached is not None:
            log.info("azure.model_cached", model=ref.name, version=version, path=str(cached))
            return LocalModel(ref.name, version, cached)
        path = self.cache.fill(
            ref.name, version, lambda into: self._download(ref.name, version, into)
        )
        return LocalModel(ref.name, version, path)

    def resolve(self, ref: ModelRef) -> str:
        """The version ``ref`` names; InvalidRequest when there is none such."""
        from azure.core.exceptions import ResourceNotFoundError

        ops = self._client.models
        if ref.version is not None:
            found = get_or_none("models.get", ops.get, ref.name, ref.version, policy=self._policy)
            if found is None:
                raise InvalidRequest(f"no registered model {ref} in the workspace")
            return ref.version

        def versions() -> list[Any]:
            try:
                return list(ops.list(name=ref.name))
            except ResourceNotFoundError:
                return []

        listed = call("models.list", versions, policy=self._policy)
        if not listed:
            raise InvalidRequest(f"no registered model named {ref.name!r} in the workspace")
        if ref.alias is None:
            latest = latest_version(str(m.version) for m in listed)
            assert latest is not None  # listed is not empty
            return latest
        tag = alias_tag(ref.alias)
        holder = alias_holder(((str(m.version), dict(m.tags or {})) for m in listed), tag)
        if holder is None:
            raise InvalidRequest(
                f"no version of model {ref.name!r} has the alias {ref.alias!r} "
                f"(on Azure ML: the tag {tag})"
            )
        return holder

    def _download(self, name: str, version: str, into: Path) -> None:
        self.downloads += 1
        log.info("azure.model_downloading", model=name, version=version)
        call(
            "models.download",
            self._client.models.download,
            name=name,
            version=version,
            download_path=str(into),
            policy=self._policy,
        )
