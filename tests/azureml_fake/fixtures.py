"""Fixtures: the fake Azure ML workspace over HTTPS, an MLClient aimed at it, and a real
MLflow tracking server filled like an Azure AutoML parent run."""

from __future__ import annotations

import importlib
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from fixtures_azurite import ACCOUNT, ACCOUNT_KEY, Azurite, require_azurite

from automl_service.engines.azure import build_azure_backend
from automl_service.engines.azure.client import build_ml_client
from automl_service.engines.azure.deployer import AzureDeployer
from automl_service.engines.base import Backend
from automl_service.errors import NotReady
from automl_service.request import AutoMLRequest
from automl_service.runs import Endpoint, ModelVersion
from automl_service.settings import AzureSettings

from .certs import BLOB_HOST, make_loopback_cert
from .server import ARTIFACT_STORE, FakeAzureML


class StaticCredential:
    """A token credential that hands out a fixed token.

    A stand-in for Entra ID, which cannot run offline; the SDK asks it for tokens exactly
    as it asks DefaultAzureCredential.
    """

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken("fake-token", int(time.time()) + 3600)


@pytest.fixture(scope="session")
def loopback_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made once per test run."""
    return make_loopback_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fake_aml(
    loopback_cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeAzureML]:
    """A running fake workspace whose certificate the HTTP stack trusts."""
    cert, key = loopback_cert
    fake = FakeAzureML(cert, key).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    yield fake
    fake.stop()


@pytest.fixture
def azure_settings(fake_aml: FakeAzureML) -> AzureSettings:
    """Settings naming the fake's workspace."""
    return AzureSettings(
        subscription_id=fake_aml.subscription_id,
        resource_group=fake_aml.resource_group,
        workspace_name=fake_aml.workspace,
        compute="cpu-cluster",
    )


def backend_on_fake(
    fake: FakeAzureML, settings: AzureSettings, staging_dir: Path, cache_dir: Path | None = None
) -> Backend:
    """The azure backend on ``fake``: a fresh cloud name carrying the fake's endpoints (build
    it after any Azurite datastore fixture, whose storage endpoint the cloud then names), a
    static token, and its staging and model cache folders. Set ``AZUREML_CURRENT_CLOUD`` to
    ``AzureCloud`` first (the SDK reads it)."""
    return build_azure_backend(
        settings,
        staging_dir=staging_dir,
        cache_dir=cache_dir,
        credential=StaticCredential(),
        cloud=f"fakeaml-{uuid.uuid4().hex[:12]}",
        cloud_metadata=fake.cloud_metadata(),
    )


@pytest.fixture
def credential() -> StaticCredential:
    return StaticCredential()


def ml_client_for(
    fake: FakeAzureML,
    settings: AzureSettings,
    credential: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """A real MLClient on a custom cloud whose every endpoint is the fake."""
    # MLClient writes the current cloud into the process environment: restore it after.
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    return build_ml_client(
        settings,
        credential,
        cloud=f"fakeaml-{uuid.uuid4().hex[:12]}",
        cloud_metadata=fake.cloud_metadata(),
    )


@pytest.fixture
def ml_client(
    fake_aml: FakeAzureML,
    azure_settings: AzureSettings,
    credential: StaticCredential,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    return ml_client_for(fake_aml, azure_settings, credential, monkeypatch)


# The workspace's default datastore on Azurite's blob service -----------------------------


@pytest.fixture(scope="session")
def azurite_blob(
    loopback_cert: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Azurite]:
    """One in-memory Azurite blob service over HTTPS, with the loopback certificate (which
    also names ``BLOB_HOST``), for the whole test session."""
    server = Azurite(
        require_azurite("blob"),
        tmp_path_factory.mktemp("azurite-blob"),
        service="blob",
        tls=loopback_cert,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def resolve_localhost_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve every ``*.localhost`` name to 127.0.0.1 in this process.

    RFC 6761 (section 6.3) reserves them for loopback and asks resolvers to answer so;
    systemd-resolved does, but this machine's glibc (hosts: files, dns) does not, and the
    SDK reaches a datastore's account by name only: ``https://{account}.blob.{storage
    endpoint}``. Only name resolution changes: the SDK, the storage SDK and TLS (checked
    against ``BLOB_HOST`` in the certificate) run as they are.
    """
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.lower().rstrip(".").endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@dataclass
class Blobstore:
    """The fake workspace's default datastore: its container on Azurite."""

    name: str
    container: Any  # azure.storage.blob.ContainerClient, for a test's own checks


@pytest.fixture
def workspace_blobstore(
    fake_aml: FakeAzureML, azurite_blob: Azurite, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Blobstore]:
    """``workspaceblobstore``, the fake workspace's default datastore, on a fresh container
    of Azurite's development account with its account key, so the SDK's uploads and reads
    reach Azurite: the cloud's storage endpoint is ``core.localhost:<port>``. MLClients
    for the fake must be built after this fixture (the cloud table keeps the endpoint)."""
    resolve_localhost_names(monkeypatch)
    fake_aml.storage_endpoint = f"core.localhost:{azurite_blob.port}"
    store = azurite_datastore(fake_aml, azurite_blob, "workspaceblobstore", default=True)
    try:
        yield store
    finally:
        store.container.close()


@pytest.fixture
def workspace_artifactstore(
    fake_aml: FakeAzureML, azurite_blob: Azurite, workspace_blobstore: Blobstore
) -> Iterator[Blobstore]:
    """``workspaceartifactstore``, where the fake keeps jobs' artifacts (and so the files
    of models registered from them, see ``FakeAzureML.stored_model_uri``), on its own
    Azurite container. MLClients for the fake must be built after this fixture."""
    store = azurite_datastore(fake_aml, azurite_blob, ARTIFACT_STORE)
    try:
        yield store
    finally:
        store.container.close()


def azurite_datastore(
    fake: FakeAzureML, azurite: Azurite, name: str, *, default: bool = False
) -> Blobstore:
    """Datastore ``name`` of the fake workspace on a fresh container of Azurite's
    development account, with its account key."""
    from azure.storage.blob import ContainerClient

    container_name = f"azureml-{name[:20]}-{uuid.uuid4().hex[:12]}"
    fake.add_datastore(name, ACCOUNT, container_name, key=ACCOUNT_KEY, default=default)
    container = ContainerClient(
        f"https://{BLOB_HOST}:{azurite.port}",
        container_name,
        credential=ACCOUNT_KEY,
        retry_total=0,
    )
    container.create_container()
    return Blobstore(name, container)


# A real MLflow tracking server -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TrackingServer:
    url: str
    process: subprocess.Popen[bytes]
    store: Any  # the server's own SqlAlchemyStore, opened in this process for seeding


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """``mlflow server`` on 127.0.0.1 with a SQLite store, shared by all tests of a run."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    root = tmp_path_factory.mktemp("mlflow-server")
    # Creating the schema here, once, spares the server its own migration run.
    store_class: Any = SqlAlchemyStore  # MLflow ships no type hints
    store = store_class(f"sqlite:///{root / 'mlflow.db'}", str(root / "artifacts"))
    port = _free_port()
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--default-artifact-root",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise RuntimeError((root / "server.log").read_text()[-2000:])
        time.sleep(0.5)
    yield TrackingServer(url, process, store)
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@dataclass(frozen=True)
class Iteration:
    """One child run to seed: its suffix (``"3"`` or ``"setup"``), metrics and status."""

    suffix: str
    metrics: dict[str, float]
    status: str = "FINISHED"
    algorithm: str = "LightGBM"
    #: The suffix of the iteration this run belongs under (a test run), or None for an
    #: iteration of the parent.
    under: str | None = None


def fill_automl_parent(
    server: TrackingServer,
    parent_run_id: str,
    children: list[Iteration],
    *,
    experiment_name: str = "automl-service",
    best_child: str | None = None,
) -> str:
    """Write a parent run named like an Azure AutoML job, with children ``<parent>_<suffix>``,
    through the server's own store; returns the experiment id.

    MLflow picks run ids itself; Azure's are ``<parent>_<n>``. The store's id generator is
    swapped for a fixed sequence while seeding (test data only: the service never creates
    runs).
    """
    from mlflow.entities import Metric, RunStatus, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server.url)
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(experiment_name)
    )
    store = server.store
    ids = iter([parent_run_id] + [f"{parent_run_id}_{c.suffix}" for c in children])

    class _Id:
        @property
        def hex(self) -> str:
            return next(ids)

    # Only the store module's own reference to ``uuid`` is swapped, so nothing else in the
    # process (HTTP request ids, other threads) draws from the sequence.
    store_module: Any = importlib.import_module(type(store).__module__)
    original = store_module.uuid
    store_module.uuid = SimpleNamespace(uuid4=_Id)
    try:
        now = int(time.time() * 1000)
        tags = [RunTag("mlflow.runName", parent_run_id)]
        if best_child:
            tags.append(RunTag("automl_best_child_run_id", best_child))
        parent = store.create_run(experiment_id, "automl", now, tags, parent_run_id)
        for offset, child in enumerate(children, start=1):
            run_id = f"{parent_run_id}_{child.suffix}"
            run = store.create_run(
                experiment_id,
                "automl",
                now + offset,
                [
                    RunTag(
                        "mlflow.parentRunId",
                        f"{parent_run_id}_{child.under}" if child.under else parent_run_id,
                    ),
                    RunTag("run_algorithm", child.algorithm),
                ],
                run_id,
            )
            metrics = [Metric(k, v, now + offset, 0) for k, v in child.metrics.items()]
            store.log_batch(run.info.run_id, metrics=metrics, params=[], tags=[])
            store.update_run_info(
                run.info.run_id, RunStatus.from_string(child.status), now + 1000 + offset, None
            )
        store.update_run_info(parent.info.run_id, RunStatus.FINISHED, now + 5000, None)
    finally:
        store_module.uuid = original
    return str(experiment_id)


def roll_out(deployer: AzureDeployer, request: AutoMLRequest, model: ModelVersion) -> Endpoint:
    """Call deploy as the worker would, until it stops answering NotReady."""
    for _ in range(10):
        try:
            return deployer.deploy(request, model, 0.9)
        except NotReady:
            continue
    raise AssertionError("the rollout never finished")
