"""The azure half of the fault-injection benchmark: what the workers talk to, and what is
read back afterwards.

Started here, on loopback, for one run:

- Azurite (the Azure Storage emulator), with a ``ChaosProxy`` in front of it: the workers'
  queue connection string names the proxy, which answers ``--fault-rate`` of their calls
  with 503 ServerBusy, 429 or 503 with Retry-After, or a reset connection (before the
  call reaches Azurite, or after it took effect);
- the Azure ML fake (``tests/azureml_fake``) over HTTPS, failing the same fraction of
  calls with 429 with Retry-After, 503, or a reset connection (before or after the change
  is made); long-running-operation status polls are spared, as the service never waits
  on them. Jobs report NotStarted, then Running for ``--running-polls`` status reads,
  then Completed;
- a real ``mlflow server``, the workspace's tracking server: when the fake first creates
  a job, an Azure-AutoML-shaped parent run with its iterations is written to it.

Requests and hostile bodies go straight to Azurite (not through the proxy): the faults are
aimed at the workers. Workers run ``benchmarks.azure_worker``. Afterwards: jobs and active
model versions per request id are counted in the fake (and parent runs on the tracking
server; a version archived as a second registration of a request is listed apart),
hostile bodies are looked up on the poison queue by message id, and outcome messages are
read from the reply queue.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.queue import QueueClient, QueueServiceClient

from automl_service.queues.azure_storage import POISON_SUFFIX
from automl_service.queues.encoding import decode, parse_poison
from automl_service.results import RequestResult
from automl_service.tags import REQUEST_TAG

from .chaos_proxy import ChaosProxy
from .fault_injection import QUEUE_NAME, Config, Report, worker_env
from .tracking_server import free_port, mlflow_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from azureml_fake.certs import make_loopback_cert  # noqa: E402
from azureml_fake.fixtures import Iteration, TrackingServer, fill_automl_parent  # noqa: E402
from azureml_fake.server import FakeAzureML  # noqa: E402

from .azure_worker import CLOUD_METADATA_ENV  # noqa: E402

RESULT_QUEUE = "automl-results"
PARENT_TAG = "mlflow.parentRunId"
#: The iterations every job's parent run gets; iteration 1 wins on accuracy.
ITERATIONS = [
    Iteration("setup", {}),
    Iteration("0", {"accuracy": 0.81}, algorithm="LightGBM"),
    Iteration("1", {"accuracy": 0.86}, algorithm="XGBoost"),
    Iteration("2", {"accuracy": 0.84}, algorithm="RandomForest"),
]


def good_request(index: int, config: Config) -> dict[str, Any]:
    """A classification request on workspace data (nothing to upload), registering a model
    of its own; every ``config.deploy_every``-th also deploys to an endpoint of its own."""
    request_id = f"fi-{index:03d}-azure"
    body: dict[str, Any] = {
        "request_id": request_id,
        "task": "classification",
        "training_data": f"azureml://datastores/workspaceblobstore/paths/fi-{index:03d}/",
        "target_column_name": "target",
        "primary_metric": "accuracy",
        "limits": {"timeout_seconds": 900, "max_trials": config.max_trials},
        "registration": {"model_name": f"model-{request_id}"},
    }
    if config.deploy_every and index % config.deploy_every == config.deploy_every - 1:
        body["deployment"] = {"endpoint_name": f"ep-fi-{index:03d}"}
    return body


def _azurite_launcher() -> Any:
    """``tests/fixtures_azurite``: the one way Azurite is found and started."""
    return importlib.import_module("fixtures_azurite")


@dataclass
class AzureSite:
    """Everything one azure run talks to; see the module docstring."""

    config: Config
    azurite_port: int
    proxy: ChaosProxy
    fake: FakeAzureML
    tracking: BackgroundTracking
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    #: Versions a worker archived because another had registered the request first.
    archived: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.command = [sys.executable, "-m", "benchmarks.azure_worker"]
        connection = _azurite_launcher().connection_string
        self._direct = QueueServiceClient.from_connection_string(
            connection(self.azurite_port), retry_total=3
        )
        self._requests = self._direct.get_queue_client(QUEUE_NAME)
        with suppress(ResourceExistsError):
            self._requests.create_queue()

    def send(self, text: str) -> str:
        return str(self._requests.send_message(text).id)

    def good_request(self, index: int) -> dict[str, Any]:
        return good_request(index, self.config)

    def queue_empty(self) -> bool:
        try:
            count = self._requests.get_queue_properties().approximate_message_count
        except AzureError:
            return False
        return not count

    def poisoned(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for text in drain(self._direct.get_queue_client(QUEUE_NAME + POISON_SUFFIX)):
            record = parse_poison(decode(text, "auto").text)
            if record is not None and record.reason.strip():
                found[record.message_id] = record.reason
        return found

    def duplicates(self) -> tuple[dict[str, int], dict[str, int]]:
        jobs_of: dict[str, str] = {}  # job name -> request id
        jobs: Counter[str] = Counter()
        for name, job in self.fake.jobs.items():
            request_id = job.get("properties", {}).get("tags", {}).get(REQUEST_TAG)
            if request_id:
                jobs_of[name] = request_id
                jobs[request_id] += 1
        parents = self._parent_runs()
        for request_id, count in Counter(jobs_of[n] for n in parents if n in jobs_of).items():
            jobs[request_id] = max(jobs[request_id], count)
        versions: Counter[str] = Counter()
        for name, by_version in self.fake.models.items():
            for number, version in by_version.items():
                properties = version.get("properties", {})
                request_id = properties.get("tags", {}).get(REQUEST_TAG)
                if request_id and properties.get("isArchived"):
                    self.archived.append(f"{name}:{number} ({request_id})")
                elif request_id:
                    versions[request_id] += 1
        return (
            {k: n for k, n in jobs.items() if n > 1},
            {k: n for k, n in versions.items() if n > 1},
        )

    def _parent_runs(self) -> list[str]:
        """The run id of every parent run on the tracking server (Azure names it after the
        job), one entry per run."""
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking.server().url)
        experiments = [e.experiment_id for e in client.search_experiments()]
        found: list[str] = []
        token: str | None = None
        while experiments:
            page = client.search_runs(experiments, max_results=1000, page_token=token)
            found += [r.info.run_id for r in page if PARENT_TAG not in r.data.tags]
            token = page.token
            if not token:
                break
        return found

    def after_stop(self, report: Report) -> None:
        report.problems += [f"archived as a second registration: {v}" for v in self.archived]
        report.faults = {
            "the queue proxy": dict(self.proxy.injected),
            "the Azure ML fake": dict(self.fake.injected),
        }
        asked = {self.good_request(i)["request_id"] for i in range(report.requests)}
        outcomes: Counter[str] = Counter()
        for text in drain(self._direct.get_queue_client(RESULT_QUEUE)):
            try:
                result = RequestResult.model_validate_json(decode(text, "auto").text)
            except ValueError:
                continue
            if result.state.terminal and result.request_id in asked:
                outcomes[result.request_id] += 1
        report.replied = len(outcomes)
        report.reply_messages = sum(outcomes.values())
        self._direct.close()


def drain(queue: QueueClient) -> Iterator[str]:
    """The text of every message on ``queue``, each received (hidden) once; none when the
    queue does not exist."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        while True:
            page = list(queue.receive_messages(max_messages=32, visibility_timeout=3600))
            if not page:
                return
            for message in page:
                yield str(message.content or "")
    except ResourceNotFoundError:
        return


class BackgroundTracking:
    """The workspace's tracking server, started on a thread of its own so that the rest is
    set up meanwhile (creating MLflow's schema and starting the server take seconds); its
    URL is known at once, and ``server()`` waits until it answers."""

    def __init__(self, workspace: Path, log: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self._workspace = workspace
        self._log = log
        self._server: TrackingServer | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> BackgroundTracking:
        self._thread.start()
        return self

    def server(self, timeout: float = 240) -> TrackingServer:
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the tracking server at {self.url} did not start")
        if self._server is None:
            raise RuntimeError(f"the tracking server did not start: {self._error!r}")
        return self._server

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        db = f"sqlite:///{self._workspace / 'mlflow.db'}"
        artifacts = self._workspace / "artifacts"
        try:
            store_class: Any = SqlAlchemyStore  # MLflow ships no type hints
            store = store_class(db, str(artifacts))  # the schema, made once
            port = int(self.url.rsplit(":", 1)[1])
            with mlflow_server(db, artifacts, self._log, port=port) as url:
                self._server = TrackingServer(url, None, store)  # type: ignore[arg-type]
                self._ready.set()
                self._stop.wait()
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()


def seeder(tracking: BackgroundTracking, fake: FakeAzureML, running_polls: int) -> Any:
    """The fake's ``on_job_created``: the job's parent run and iterations on the tracking
    server, and its status script. Seeding swaps a module-level id generator, so one job
    is seeded at a time."""
    lock = threading.Lock()

    def seed(name: str, body: dict[str, Any]) -> None:
        with lock:
            fill_automl_parent(tracking.server(), name, ITERATIONS, best_child=f"{name}_1")
        fake.job_scripts[name] = ["NotStarted"] + ["Running"] * running_polls + ["Completed"]

    return seed


@contextmanager
def azure_site(config: Config, data_dir: Path, log_dir: Path) -> Iterator[AzureSite]:
    """Azurite, the chaos proxy, the tracking server and the fake, started for one run and
    stopped after it; the workers' command and environment aimed at them."""
    launcher = _azurite_launcher()
    executable = launcher.find_azurite()
    if executable is None:
        raise SystemExit("Azurite not installed: run .ci/install-azurite.sh")
    workspace = log_dir / "workspace"
    workspace.mkdir()
    with ExitStack() as stack:
        tracking = BackgroundTracking(workspace, log_dir / "mlflow-server.log").start()
        stack.callback(tracking.stop)
        azurite = launcher.Azurite(executable, workspace / "azurite")
        azurite.start()
        stack.callback(azurite.stop)
        proxy = ChaosProxy(azurite.port, fault_rate=config.fault_rate, seed=config.seed).start()
        stack.callback(proxy.stop)
        cert, key = make_loopback_cert(workspace)
        fake = FakeAzureML(cert, key, tracking_uri=tracking.url).start()
        stack.callback(fake.stop)
        fake.on_job_created = seeder(tracking, fake, config.running_polls)
        fake.random_faults(config.fault_rate, seed=config.seed + 1)

        site = AzureSite(config, azurite.port, proxy, fake, tracking)
        site.env = azure_worker_env(config, data_dir, proxy, fake, cert)
        tracking.server()  # ready before the workers start: seeding never waits for it
        yield site


def azure_worker_env(
    config: Config, data_dir: Path, proxy: ChaosProxy, fake: FakeAzureML, cert: Path
) -> dict[str, str]:
    """The local mode's worker settings, on the azure backend: the queue through the
    proxy, the fake's workspace, short status polls."""
    env = worker_env(data_dir, config.slots)
    env.pop("AZUREML_CURRENT_CLOUD", None)
    connection = _azurite_launcher().connection_string
    env.update(
        AUTOML_SERVICE_BACKEND="azure",
        AUTOML_SERVICE_QUEUE__KIND="azure_storage",
        AUTOML_SERVICE_QUEUE__NAME=QUEUE_NAME,
        AUTOML_SERVICE_QUEUE__CONNECTION_STRING=connection(proxy.port),
        AUTOML_SERVICE_QUEUE__RESULT_QUEUE=RESULT_QUEUE,
        AUTOML_SERVICE_QUEUE__CREATE_QUEUES="true",
        AUTOML_SERVICE_AZURE__SUBSCRIPTION_ID=fake.subscription_id,
        AUTOML_SERVICE_AZURE__RESOURCE_GROUP=fake.resource_group,
        AUTOML_SERVICE_AZURE__WORKSPACE_NAME=fake.workspace,
        AUTOML_SERVICE_AZURE__COMPUTE="cpu-cluster",
        AUTOML_SERVICE_AZURE__POLL_MIN_SECONDS="0.5",
        AUTOML_SERVICE_AZURE__POLL_MAX_SECONDS="2",
        REQUESTS_CA_BUNDLE=str(cert),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
    )
    env[CLOUD_METADATA_ENV] = json.dumps(fake.cloud_metadata())
    return env
