"""The ``azure`` backend: AutoML jobs, models and managed online endpoints on Azure ML.

Modules: ``client`` (credential and MLClient from settings), ``jobs`` (AutoML job objects
from a request), ``data`` (CSV to MLTable), ``status`` (status mapping and poll rhythm),
``tracking`` (the workspace's MLflow server), ``engine``, ``registry``, ``deployer``,
``promotion`` (pure rollout decisions), ``rollback`` (where a rollback goes, and the
loop that carries it out), ``model_versions`` (pure: latest version, alias
holder), ``model_cache`` and ``model_files`` (registered models downloaded once for
scoring here), ``held_out`` (a fifth of a local training file set apart for "only
if better"), ``test_rows`` (a request's test data read here), ``same_rows`` (a new model
and the live one scored on those rows) and ``background_verdicts`` (that scoring kept off
the worker's loop). Calls are retried by
``automl_service.azure_retry``, the one retry policy of both Azure backends.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...settings import AzureSettings
    from ..base import Backend


def build_azure_backend(
    azure: AzureSettings,
    *,
    staging_dir: Path,
    cache_dir: Path | None = None,
    credential: Any | None = None,
    **client_kwargs: Any,
) -> Backend:
    """Engine, registry and deployer on the configured workspace. Makes no network call.

    ``staging_dir`` keeps the MLTable folders made for local CSV training data;
    ``cache_dir`` the registered models downloaded for scoring here (default: ``cache/models``
    beside ``staging_dir``);
    ``credential`` and ``client_kwargs`` (e.g. a custom cloud) go to MLClient.
    """
    from ..base import Backend
    from .client import build_credential, build_ml_client
    from .data import AssetVersions, DatastoreETags, DataVersions, MLTableStager
    from .deployer import AzureDeployer
    from .engine import AzureEngine
    from .held_out import HeldOutSlice
    from .model_files import AzureModelFiles
    from .registry import AzureRegistry
    from .same_rows import SameRowsComparison
    from .status import PollSchedule
    from .test_rows import AzureTestRows
    from .tracking import WorkspaceTracking

    credential = credential if credential is not None else build_credential(azure)
    client = build_ml_client(azure, credential, **client_kwargs)
    tracking = WorkspaceTracking(azure.tracking_uri, credential) if azure.tracking_uri else None
    held_out = HeldOutSlice(staging_dir / "held-out")
    engine = AzureEngine(
        client,
        tracking=tracking,
        tracking_factory=lambda uri: WorkspaceTracking(uri, credential),
        compute=azure.compute,
        resolve_data=MLTableStager(staging_dir),
        held_out=held_out,
        poll=PollSchedule(azure.poll_min_seconds, azure.poll_max_seconds),
    )
    model_files = AzureModelFiles(client, cache_dir or staging_dir.parent / "cache" / "models")
    test_rows = AzureTestRows(client, staging_dir / "test-rows")
    deployer = AzureDeployer(
        client,
        compare=SameRowsComparison(model_files, test_rows.read),
        held_out=held_out,
        allowed_instance_types=azure.allowed_instance_types,
        max_instance_count=azure.max_instance_count,
        timeout_seconds=azure.deployment_timeout_seconds,
    )
    return Backend(
        engine=engine,
        registry=AzureRegistry(client),
        deployer=deployer,
        model_files=model_files,
        data_versions=DataVersions(AssetVersions(client), DatastoreETags(client)),
    )


__all__ = ["build_azure_backend"]
