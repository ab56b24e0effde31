"""Building the credential and the ``MLClient`` from settings.

The credential is ``DefaultAzureCredential`` (managed identity in a container, the CLI
login on a laptop) unless a user-assigned identity's client id is set, in which case it is
``ManagedIdentityCredential`` for that identity. The workspace is named in settings
(subscription, resource group, workspace) or read from a workspace config file.
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigurationError
from ...settings import AzureSettings


def build_credential(settings: AzureSettings) -> Any:
    """The token credential for Azure ML and its MLflow server. Makes no network call."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if settings.client_id:
        return ManagedIdentityCredential(client_id=settings.client_id)
    return DefaultAzureCredential()


def client_options(**extra: Any) -> dict[str, Any]:
    """MLClient keyword arguments the service always passes.

    ``retry_total=0``: the service's own tenacity policy (``azure_retry``) is the one retry
    layer. ``enable_telemetry=False``: the SDK sends no usage data from a service.
    ``show_progress=False``: no progress bars in logs.
    """
    return {"retry_total": 0, "enable_telemetry": False, "show_progress": False, **extra}


def build_ml_client(
    settings: AzureSettings, credential: Any | None = None, **client_kwargs: Any
) -> Any:
    """An ``azure.ai.ml.MLClient`` for the configured workspace. Makes no network call.

    ``client_kwargs`` go to MLClient as they are (e.g. ``cloud`` and ``cloud_metadata``
    for a sovereign or test cloud). Raises ConfigurationError when the workspace is not
    named and no config file is given.
    """
    from azure.ai.ml import MLClient

    credential = credential if credential is not None else build_credential(settings)
    options = client_options(**client_kwargs)
    named = (settings.subscription_id, settings.resource_group, settings.workspace_name)
    if all(named):
        return MLClient(
            credential,
            subscription_id=settings.subscription_id,
            resource_group_name=settings.resource_group,
            workspace_name=settings.workspace_name,
            **options,
        )
    if settings.config_path is not None:
        if not settings.config_path.exists():
            raise ConfigurationError(f"workspace config file not found: {settings.config_path}")
        return MLClient.from_config(credential, path=str(settings.config_path), **options)
    missing = [
        name
        for name, value in zip(
            ("subscription_id", "resource_group", "workspace_name"), named, strict=True
        )
        if not value
    ]
    raise ConfigurationError(
        "azure backend needs the workspace: set azure."
        + ", azure.".join(missing)
        + " or azure.config_path"
    )
