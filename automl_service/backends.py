"""The one place that builds concrete parts from settings. Adapters are imported lazily,
so the local default never imports the Azure SDKs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigurationError
from .policy import Applied, enforce
from .queues.base import Queue, ResultSink
from .request import AutoMLRequest
from .results import ResultStore
from .settings import Settings
from .worker import Backend

__all__ = [
    "Backend",
    "build_backend",
    "build_policy",
    "build_queue",
    "build_results",
    "build_sink",
]


def data_dir(settings: Settings) -> Path:
    path = settings.local.data_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_queue(settings: Settings) -> Queue:
    if settings.queue.kind == "sqlite":
        from .queues.sqlite import SqliteQueue

        data_dir(settings)
        return SqliteQueue(settings.local.resolve(settings.queue.sqlite_path), settings.queue.name)
    from .queues.azure_storage import AzureStorageQueue

    return AzureStorageQueue.from_settings(settings)


def build_sink(settings: Settings) -> ResultSink | None:
    """Outcome messages go to a reply queue only on Azure Storage; locally the result
    store is the reply record."""
    if settings.queue.kind != "azure_storage":
        return None
    from .queues.azure_storage import AzureResultSink

    return AzureResultSink.from_settings(settings)


def build_results(settings: Settings) -> ResultStore:
    from .result_store import SqliteResultStore

    return SqliteResultStore(data_dir(settings) / "results.db")


def build_backend(settings: Settings) -> Backend:
    if settings.backend == "local":
        from .engines.local.endpoints import LocalDeployer
        from .engines.local.engine import LocalEngine
        from .engines.local.registry import MlflowRegistry
        from .engines.local.store import prepare_store

        data_dir(settings)
        # Before any client touches the store: replicas started together take turns.
        prepare_store(settings.local.mlflow_uri, settings.local.artifact_root)
        return Backend(
            engine=LocalEngine(settings.local),
            registry=MlflowRegistry(settings.local.mlflow_uri),
            deployer=LocalDeployer(settings.local),
        )
    if settings.backend == "azure":
        from .engines.azure import build_azure_backend

        return build_azure_backend(settings)
    raise ConfigurationError(f"unknown backend {settings.backend!r}")


def build_policy(settings: Settings) -> Callable[[AutoMLRequest], Applied]:
    """The operator's policy as one function of a request (``policy.enforce``); the Azure
    backend's instance-type and instance-count caps are part of it."""
    azure = settings.backend == "azure"
    return functools.partial(
        enforce,
        policy=settings.policy,
        instance_types=settings.azure.allowed_instance_types if azure else (),
        max_instance_count=settings.azure.max_instance_count if azure else None,
    )
