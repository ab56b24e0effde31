"""The composition root: the one place that builds concrete parts from settings.

Every adapter receives only its own settings section; only this module reads the root
``Settings``. Adapters are imported lazily, so the local default never imports the Azure
SDKs. Building makes no network call, except where a function says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .engines.base import Backend, ModelFiles
from .errors import ConfigurationError
from .policy import Applied, enforce
from .queues.base import Queue, ResultSink
from .redact import secret_values
from .request import AutoMLRequest
from .settings import LocalSettings, Settings, WorkerSettings
from .stats import WorkerStats
from .worker import Worker

if TYPE_CHECKING:
    from .engines.local.serving import ScoringServer
    from .health import HealthServer
    from .result_store import SqliteResultStore

__all__ = [
    "Backend",
    "build_backend",
    "build_health_server",
    "build_model_files",
    "build_policy",
    "build_queue",
    "build_results",
    "build_scoring_server",
    "build_sink",
    "build_worker",
]


def data_dir(settings: Settings) -> Path:
    """The local data folder, created if missing."""
    path = settings.local.data_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_queue(settings: Settings) -> Queue:
    """The request queue named by ``settings.queue``."""
    if settings.queue.kind == "sqlite":
        from .queues.sqlite import SqliteQueue

        data_dir(settings)
        return SqliteQueue(settings.local.resolve(settings.queue.sqlite_path), settings.queue.name)
    from .queues.azure_storage import AzureStorageQueue, service_client

    q = settings.queue
    return AzureStorageQueue(
        service_client(q, client_id=settings.azure.client_id),
        q.name,
        encoding=q.message_encoding,
        create_queues=q.create_queues,
    )


def build_sink(settings: Settings) -> ResultSink | None:
    """Outcome messages go to a reply queue only on Azure Storage; locally the result
    store is the reply record."""
    if settings.queue.kind != "azure_storage":
        return None
    from .queues.azure_storage import AzureResultSink, service_client

    q = settings.queue
    return AzureResultSink(
        service_client(q, client_id=settings.azure.client_id),
        q.result_queue,
        encoding=q.message_encoding,
        create_queues=q.create_queues,
    )


def build_results(settings: Settings) -> SqliteResultStore:
    """The result store in the local data folder (a ``ResultStore``, and where the
    fingerprint first seen for each message is pinned)."""
    from .result_store import SqliteResultStore

    return SqliteResultStore(data_dir(settings) / "results.db")


def build_backend(settings: Settings) -> Backend:
    """Engine, registry and deployer of ``settings.backend``. On the local backend the
    MLflow store is created or migrated first (under its file lock)."""
    if settings.backend == "local":
        from .engines.local.deployer import LocalDeployer
        from .engines.local.engine import LocalEngine
        from .engines.local.model_files import MlflowModelFiles
        from .engines.local.registry import MlflowRegistry
        from .engines.local.store import prepare_store

        data_dir(settings)
        # Before any client touches the store: replicas started together take turns.
        prepare_store(settings.local.mlflow_uri, settings.local.artifact_root)
        return Backend(
            engine=LocalEngine(settings.local),
            registry=MlflowRegistry(settings.local.mlflow_uri),
            deployer=LocalDeployer(settings.local),
            model_files=MlflowModelFiles(settings.local.mlflow_uri),
        )
    if settings.backend == "azure":
        from .engines.azure import build_azure_backend

        return build_azure_backend(
            settings.azure,
            staging_dir=settings.local.data_dir / "azure-mltable",
            cache_dir=model_cache_dir(settings),
        )
    raise ConfigurationError(f"unknown backend {settings.backend!r}")


def model_cache_dir(settings: Settings) -> Path:
    """Where registered models downloaded for scoring here are kept."""
    return settings.local.data_dir / "cache" / "models"


def build_model_files(settings: Settings) -> ModelFiles:
    """The registered models of ``settings.backend`` as folders on this machine, for
    ``predict``: the local store's own (opened as it is, not migrated), or Azure ML's,
    downloaded once into the data folder's cache. Makes no network call."""
    if settings.backend == "local":
        from .engines.local.model_files import MlflowModelFiles

        return MlflowModelFiles(settings.local.mlflow_uri)
    files = build_backend(settings).model_files
    if files is None:
        raise ConfigurationError(f"backend {settings.backend!r} cannot fetch models")
    return files


def build_policy(
    settings: Settings, *, cwd: Path | None = None
) -> Callable[[AutoMLRequest], Applied]:
    """The operator's policy as one function of a request (``policy.enforce``); the Azure
    backend's instance-type and instance-count caps are part of it. Relative local paths
    are read from ``cwd`` (default: the working folder)."""
    azure = settings.backend == "azure"
    return functools.partial(
        enforce,
        policy=settings.policy,
        instance_types=settings.azure.allowed_instance_types if azure else (),
        max_instance_count=settings.azure.max_instance_count if azure else None,
        cwd=cwd,
        azure=azure,
    )


def build_worker(
    settings: Settings,
    *,
    queue: Queue | None = None,
    worker_settings: WorkerSettings | None = None,
    stats: WorkerStats | None = None,
) -> Worker:
    """A worker on the configured queue (or ``queue``), backend, result store and reply
    sink, applying the operator's policy and stamping data fingerprints, with
    ``worker_settings`` in place of ``settings.worker`` when given."""
    from .fingerprint import pinned_fingerprints

    results = build_results(settings)
    backend = build_backend(settings)
    return Worker(
        queue if queue is not None else build_queue(settings),
        backend,
        results,
        worker_settings if worker_settings is not None else settings.worker,
        stats if stats is not None else WorkerStats(),
        build_sink(settings),
        policy=build_policy(settings),
        fingerprint=pinned_fingerprints(results, backend.data_versions),
    )


def build_health_server(settings: Settings, worker: Worker) -> HealthServer | None:
    """The worker's health server (not started), or None when ``health.enabled`` is off.

    Readiness asks the worker's queue and engine; ``/metrics`` and ``/requests`` read its
    stats and result store.
    """
    if not settings.health.enabled:
        return None
    from .health import HealthServer
    from .readiness import run_checks

    checks = {"queue": worker.queue.check, "backend": worker.backend.engine.check}
    return HealthServer(
        worker.stats,
        lambda: run_checks(checks),
        worker.results,
        settings.health.host,
        settings.health.port,
        stale_after=settings.health.stale_after_seconds,
        readiness_timeout=settings.health.readiness_timeout_seconds,
        secrets=secret_values(settings),
    )


def build_scoring_server(
    local: LocalSettings, *, port: int | None = None, secrets: list[str] | None = None
) -> ScoringServer:
    """The local endpoints' scoring server (not started), on ``port`` when given, else
    ``local.endpoint_port``."""
    from .engines.local.endpoint_store import ENDPOINTS_FILE, EndpointStore
    from .engines.local.serving import ScoringServer

    return ScoringServer(
        EndpointStore(local.data_dir / ENDPOINTS_FILE),
        local.mlflow_uri,
        local.endpoint_host,
        local.endpoint_port if port is None else port,
        cache_size=local.endpoint_cache_size,
        secrets=secrets or (),
    )
