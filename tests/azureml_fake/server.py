"""A small fake of the Azure ML REST surface the service uses, served over HTTPS on loopback.

It keeps jobs, model versions, online endpoints and deployments in memory, answers the
real ``azure-ai-ml`` SDK the way the service does (long-running operations included),
records every call, and fails on purpose when told to (429 with Retry-After, 5xx, a reset
connection, a job that ends Failed, a deployment that never becomes ready), on scripted
calls or on a seeded random fraction of them (``random_faults``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

ARM_PREFIX = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices"
#: What a random fault does: answer 429 with Retry-After, answer 503, reset the connection
#: before the request takes effect, or reset it after (the change is made, the answer lost).
RANDOM_FAULTS = ("429", "503", "reset", "reset_after")


@dataclass
class Call:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float = field(default_factory=time.time)


@dataclass
class Fault:
    """Answer the next ``times`` matching requests with ``status`` (None: reset the socket)."""

    method: str
    pattern: re.Pattern[str]
    status: int | None
    times: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Provisioning:
    """When a resource finishes provisioning, and how."""

    ready_at: float
    outcome: str  # "Succeeded" | "Failed"

    def state(self, busy: str) -> str:
        return self.outcome if time.time() >= self.ready_at else busy


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeAzureML:
    """The fake workspace. ``start()`` it, point MLClient at ``url``, ``stop()`` it."""

    def __init__(
        self,
        cert: Path,
        key: Path,
        *,
        subscription_id: str = "00000000-0000-0000-0000-000000000000",
        resource_group: str = "rg-test",
        workspace: str = "ws-test",
        location: str = "westeurope",
        tracking_uri: str | None = None,
    ) -> None:
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.workspace = workspace
        self.location = location
        self.tracking_uri = tracking_uri or (
            f"azureml://{location}.api.azureml.ms/mlflow/v1.0"
            f"{self.arm_prefix}/workspaces/{workspace}"
        )
        self.calls: list[Call] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        #: Each job's body as first PUT (what may not change afterwards).
        self.job_bodies: dict[str, dict[str, Any]] = {}
        #: Statuses a job reports on successive GETs; the last one sticks.
        self.job_scripts: dict[str, list[str]] = {}
        self.default_job_script: list[str] = ["NotStarted", "Running", "Completed"]
        self.job_errors: dict[str, str] = {}
        self.models: dict[str, dict[str, dict[str, Any]]] = {}
        #: How many next model-version answers name a version already taken.
        self.stale_next_versions = 0
        #: Data assets: name -> version -> stored body (seeded with ``add_data_version``).
        self.data: dict[str, dict[str, dict[str, Any]]] = {}
        #: Datastores: name -> stored body (seeded with ``add_datastore``), and their
        #: secrets apart: a GET never returns them, only ``listSecrets`` does.
        self.datastores: dict[str, dict[str, Any]] = {}
        self.datastore_secrets: dict[str, dict[str, Any]] = {}
        #: The cloud's storage endpoint: the SDK reaches a datastore's account at
        #: ``https://{accountName}.blob.{storage_endpoint}`` (see ``add_datastore``).
        self.storage_endpoint = "core.windows.net"
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.provisioning: dict[str, Provisioning] = {}
        #: Seconds a new endpoint / deployment takes to provision (inf: never ready).
        self.endpoint_delay = 0.0
        self.deployment_delay = 0.0
        self.deployment_outcome = "Succeeded"
        #: Seconds a deployment reads "Deleting" after its DELETE.
        self.delete_delay = 0.5
        self.retry_after_seconds = 1
        #: Called with the job name and the PUT body when a job name is first created,
        #: before the job can be read (e.g. to seed its runs on the tracking server).
        self.on_job_created: Callable[[str, dict[str, Any]], None] | None = None
        #: Random faults injected so far, by kind (see ``random_faults``).
        self.injected: Counter[str] = Counter()
        self._fault_rate = 0.0
        self._rng = random.Random(0)
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Set-up -----------------------------------------------------------------------------

    @property
    def arm_prefix(self) -> str:
        return ARM_PREFIX.format(sub=self.subscription_id, rg=self.resource_group)

    @property
    def ws_path(self) -> str:
        return f"{self.arm_prefix}/workspaces/{self.workspace}"

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"https://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> FakeAzureML:
        fake = self

        class Handler(_Handler):
            owner = fake

        server = _Server(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = self._context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def cloud_metadata(self) -> dict[str, str]:
        """The six keys MLClient needs for a custom cloud pointing here."""
        return {
            "azure_portal": self.url,
            "resource_manager": self.url,
            "active_directory": self.url,
            "aml_resource_id": self.url,
            "storage_endpoint": self.storage_endpoint,
            "registry_discovery_endpoint": self.url,
        }

    # Failure injection --------------------------------------------------------------------

    def fail(
        self,
        method: str,
        pattern: str,
        status: int = 503,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests matching ``method`` and ``pattern`` with
        ``status``."""
        with self._lock:
            self._faults.append(Fault(method, re.compile(pattern), status, times, headers or {}))

    def reset_connection(self, method: str, pattern: str, *, times: int = 1) -> None:
        """Close the socket without answering the next ``times`` matching requests."""
        with self._lock:
            self._faults.append(Fault(method, re.compile(pattern), None, times))

    def random_faults(self, rate: float, seed: int = 0) -> None:
        """From now on answer a ``rate`` fraction of requests, chosen by a random generator
        seeded with ``seed``, with one of ``RANDOM_FAULTS`` (chosen alike).

        Long-running-operation status polls (``/operations/``) are left alone: the SDK
        reads them on a background thread whose result the service never waits for, so a
        fault there would be counted without reaching the service.
        """
        with self._lock:
            self._fault_rate = rate
            self._rng = random.Random(seed)

    def _random_fault(self, path: str) -> str | None:
        with self._lock:
            if self._fault_rate <= 0 or path.startswith("/operations/"):
                return None
            if self._rng.random() >= self._fault_rate:
                return None
            kind = self._rng.choice(RANDOM_FAULTS)
            self.injected[kind] += 1
            return kind

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.method == method and fault.pattern.search(path):
                    fault.times -= 1
                    return fault
        return None

    # Inspection ----------------------------------------------------------------------------

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        """Recorded calls with this method whose path matches ``pattern``."""
        regex = re.compile(pattern)
        with self._lock:
            return [c for c in self.calls if c.method == method and regex.search(c.path)]

    def control_plane_calls(self) -> list[Call]:
        """Every recorded call except long-running-operation status polls."""
        with self._lock:
            return [c for c in self.calls if not c.path.startswith("/operations/")]

    # Seeding -------------------------------------------------------------------------------

    def add_model_version(
        self, name: str, version: str, tags: dict[str, str], path: str = ""
    ) -> dict[str, Any]:
        body = {
            "properties": {
                "modelType": "mlflow_model",
                "modelUri": path,
                "tags": tags,
                "flavors": {},
                "properties": {},
            }
        }
        return self._put_model_version(name, version, body)[1]

    def add_live_deployment(
        self, endpoint: str, deployment: str, model_id: str, *, auth_mode: str = "Key"
    ) -> None:
        """An endpoint serving ``deployment`` (of ``model_id``) with all traffic."""
        self._put_endpoint(
            endpoint,
            {"location": self.location, "properties": {"authMode": auth_mode}},
            ready=True,
        )
        self.endpoints[endpoint]["properties"]["traffic"] = {deployment: 100}
        self._put_deployment(
            endpoint,
            deployment,
            {
                "location": self.location,
                "properties": {
                    "endpointComputeType": "Managed",
                    "model": model_id,
                    "instanceType": "Standard_DS3_v2",
                },
                "sku": {"name": "Default", "capacity": 1},
            },
            ready=True,
        )

    # Resource handlers ---------------------------------------------------------------------

    def _arm(self, kind: str, name: str) -> str:
        return f"{self.ws_path}/{kind}/{name}"

    def _workspace(self) -> dict[str, Any]:
        return {
            "id": self.ws_path,
            "name": self.workspace,
            "type": "Microsoft.MachineLearningServices/workspaces",
            "location": self.location,
            "kind": "Default",
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "friendlyName": self.workspace,
                "mlFlowTrackingUri": self.tracking_uri,
                "discoveryUrl": f"{self.url}discovery",
                "workspaceId": "11111111-1111-1111-1111-111111111111",
                "storageAccount": f"{self.arm_prefix}/../Microsoft.Storage/storageAccounts/sa",
            },
        }

    def _put_job(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Create a job, or change what Azure lets change on one (its description, tags,
        display name, properties and archive state): anything else is refused, as Azure
        ML answers a job PUT on an existing name with other settings (UserError)."""
        old = self.jobs.get(name)
        if old is not None:
            changed = sorted(
                key
                for key in {*_job_settings(body), *_job_settings(self.job_bodies[name])}
                if _job_settings(body).get(key) != _job_settings(self.job_bodies[name]).get(key)
            )
            if changed:
                message = (
                    f"Job {name} already exists; only description, tags, display name, "
                    f"properties and archive state can be updated (changed: {changed})"
                )
                return 400, {"error": {"code": "UserError", "message": message}}
            props = body.get("properties", {})
            for key in _JOB_MUTABLE:
                if key in props:
                    old["properties"][key] = props[key]
            return 200, old
        if self.on_job_created is not None:
            self.on_job_created(name, body)
        self.job_bodies[name] = json.loads(json.dumps(body))
        job: dict[str, Any] = json.loads(json.dumps(body))
        job.update(
            id=self._arm("jobs", name),
            name=name,
            type="Microsoft.MachineLearningServices/workspaces/jobs",
            systemData={"createdAt": _now_iso(), "createdBy": "fake"},
        )
        job.setdefault("properties", {})["status"] = "NotStarted"
        self.jobs[name] = job
        self.job_scripts.setdefault(name, list(self.default_job_script))
        return 201, job

    def _get_job(self, name: str) -> dict[str, Any] | None:
        job = self.jobs.get(name)
        if job is None:
            return None
        script = self.job_scripts.get(name) or ["Running"]
        status = script.pop(0) if len(script) > 1 else script[0]
        job["properties"]["status"] = status
        return job

    def _put_model_version(
        self, name: str, version: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Create a model version, or update an existing one's tags and description; its
        path cannot change ("Asset paths cannot be updated.", Azure ML's answer to a PUT of
        an existing version with another modelUri)."""
        old = self.models.get(name, {}).get(version)
        body = json.loads(json.dumps(body))
        props = body.setdefault("properties", {})
        if isinstance(props.get("modelUri"), str):
            props["modelUri"] = self.stored_model_uri(props["modelUri"])
        if old is not None:
            new_path = body.get("properties", {}).get("modelUri")
            if not _same_path(new_path, old["properties"].get("modelUri")):
                message = "Asset paths cannot be updated."
                return 400, {"error": {"code": "UserError", "message": message}}
            for key in ("tags", "description", "isArchived"):
                if key in body.get("properties", {}):
                    old["properties"][key] = body["properties"][key]
            return 200, old
        stored: dict[str, Any] = json.loads(json.dumps(body))
        stored.update(
            id=f"{self._arm('models', name)}/versions/{version}",
            name=version,
            type="Microsoft.MachineLearningServices/workspaces/models/versions",
            systemData={"createdAt": _now_iso()},
        )
        stored.setdefault("properties", {}).setdefault("flavors", {})
        self.models.setdefault(name, {})[version] = stored
        return 201, stored

    def stored_model_uri(self, uri: str) -> str:
        """A model version's path as the service keeps it: a job's artifacts output
        (``azureml://jobs/<run>/outputs/artifacts/<path>``, what the service registers)
        is stored as the full datastore URI it stands for, on the workspace's artifact
        store: ``azureml://subscriptions/.../datastores/workspaceartifactstore/paths/
        ExperimentRun/dcid.<run>/<path>``. The SDK's ``models.download`` parses only such
        a datastore URI (``get_ds_name_and_path_prefix`` in ``_utils/_storage_utils.py``
        splits on ``paths``), and its own default for a job's artifacts is that folder
        (``_job_operations.py``, ``ExperimentRun/dcid.{job_name}/`` on
        ``workspaceartifactstore``); models registered from jobs read back so in Azure ML.
        Any other path is kept as it is."""
        match = _JOB_ARTIFACTS.match(uri)
        if match is None:
            return uri
        run, rest = match.group(1), match.group(2)
        return (
            f"azureml://subscriptions/{self.subscription_id}/resourceGroups/"
            f"{self.resource_group}/workspaces/{self.workspace}/datastores/"
            f"{ARTIFACT_STORE}/paths/ExperimentRun/dcid.{run}/{rest}"
        )

    def add_data_version(self, name: str, version: str, uri: str) -> None:
        """A version of an MLTable data asset, as ``az ml data create`` would leave it."""
        with self._lock:
            self.data.setdefault(name, {})[version] = {
                "id": f"{self._arm('data', name)}/versions/{version}",
                "name": version,
                "type": "Microsoft.MachineLearningServices/workspaces/data/versions",
                "systemData": {"createdAt": _now_iso()},
                "properties": {"dataType": "mltable", "dataUri": uri, "isArchived": False},
            }

    def add_datastore(
        self,
        name: str,
        account_name: str,
        container_name: str,
        *,
        key: str | None = None,
        default: bool = False,
    ) -> None:
        """An Azure Blob datastore on ``account_name``'s ``container_name``, as
        ``az ml datastore create`` would leave it: with an account key (``key``) or
        identity-based (None: the SDK then uses the workspace credential)."""
        with self._lock:
            if default:
                for other in self.datastores.values():
                    other["properties"]["isDefault"] = False
            self.datastores[name] = {
                "id": self._arm("datastores", name),
                "name": name,
                "type": "Microsoft.MachineLearningServices/workspaces/datastores",
                "systemData": {"createdAt": _now_iso()},
                "properties": {
                    "datastoreType": "AzureBlob",
                    "accountName": account_name,
                    "containerName": container_name,
                    # Kept as the service keeps them; the SDK builds the account URL from
                    # the cloud's storage endpoint instead (_artifact_utilities.py:101-106).
                    "endpoint": self.storage_endpoint,
                    "protocol": "https",
                    "credentials": {"credentialsType": "AccountKey" if key else "None"},
                    "isDefault": default,
                    "serviceDataAccessAuthIdentity": "None",
                    "tags": {},
                    "properties": {},
                },
            }
            if key:
                self.datastore_secrets[name] = {"secretsType": "AccountKey", "key": key}
            else:
                self.datastore_secrets.pop(name, None)

    def _route_datastores(
        self, method: str, rest: list[str], query: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        # GET {ws}/datastores (Datastores_List; the SDK's ``datastores.get_default()`` sends
        # isDefault=true and takes the first of ``value``), GET {ws}/datastores/{name}
        # (Datastores_Get: credentials carry their type, never their secrets), POST
        # {ws}/datastores/{name}/listSecrets (Datastores_ListSecrets: AccountKeySecrets
        # {secretsType, key}). Request shapes: the SDK's REST client,
        # _restclient/arm_ml_service/operations/_operations.py, build_datastores_*_request.
        if len(rest) == 1 and method == "GET":
            stores = list(self.datastores.values())
            if query.get("isDefault", "").lower() == "true":
                stores = [d for d in stores if d["properties"]["isDefault"]]
            return 200, {}, {"value": stores}
        name = unquote(rest[1])
        if len(rest) == 2 and method == "GET" and name in self.datastores:
            return 200, {}, self.datastores[name]
        if rest[2:] == ["listSecrets"] and method == "POST" and name in self.datastore_secrets:
            # An identity-based datastore has no secrets: the SDK does not ask
            # (_artifact_utilities.py:108-111), so that case is a 404 here.
            return 200, {}, self.datastore_secrets[name]
        return _not_found("/".join(rest))

    def _route_data(self, method: str, rest: list[str]) -> tuple[int, dict[str, str], Any]:
        # Data containers and versions (2024-01-01-preview data containers / versions GET):
        # the container names its latest version; the SDK reads it for ``label="latest"``.
        name = unquote(rest[1]) if len(rest) > 1 else ""
        versions = self.data.get(name, {})
        if method == "GET" and len(rest) == 2 and versions:
            latest = max(versions, key=lambda v: int(v) if v.isdigit() else 0)
            return (
                200,
                {},
                {
                    "id": self._arm("data", name),
                    "name": name,
                    "properties": {"dataType": "mltable", "latestVersion": latest},
                },
            )
        if method == "GET" and len(rest) == 4 and rest[3] in versions:
            return 200, {}, versions[rest[3]]
        return _not_found("/".join(rest))

    def _model_container(self, name: str) -> dict[str, Any] | None:
        versions = self.models.get(name)
        if not versions:
            return None
        latest = max(int(v) for v in versions if v.isdigit())
        # Another registration may take the next version between this answer and the PUT
        # that follows it (two registrations of one name at once): ``stale_next_versions``
        # answers that many times with a version already taken.
        stale = self.stale_next_versions > 0
        self.stale_next_versions -= int(stale)
        return {
            "id": self._arm("models", name),
            "name": name,
            "properties": {
                "latestVersion": str(latest),
                "nextVersion": str(latest if stale else latest + 1),
            },
        }

    def _put_endpoint(self, name: str, body: dict[str, Any], *, ready: bool = False) -> str:
        stored = json.loads(json.dumps(body))
        old = self.endpoints.get(name)
        key = f"endpoint:{name}"
        stored.update(
            id=self._arm("onlineEndpoints", name),
            name=name,
            type="Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
        )
        props = stored.setdefault("properties", {})
        props["scoringUri"] = f"https://{name}.{self.location}.inference.ml.azure.com/score"
        props["provisioningState"] = "Updating" if old else "Creating"
        if "traffic" not in props and old:
            props["traffic"] = old["properties"].get("traffic", {})
        self.endpoints[name] = stored
        delay = 0.0 if ready else (0.0 if old else self.endpoint_delay)
        self.provisioning[key] = Provisioning(time.time() + delay, "Succeeded")
        return key

    def _get_endpoint(self, name: str) -> dict[str, Any] | None:
        ep = self.endpoints.get(name)
        if ep is None:
            return None
        busy = ep["properties"]["provisioningState"]
        ep["properties"]["provisioningState"] = self.provisioning[f"endpoint:{name}"].state(busy)
        return ep

    def _put_deployment(
        self, endpoint: str, name: str, body: dict[str, Any], *, ready: bool = False
    ) -> str:
        stored = json.loads(json.dumps(body))
        key = f"deployment:{endpoint}/{name}"
        stored.update(
            id=f"{self._arm('onlineEndpoints', endpoint)}/deployments/{name}",
            name=name,
            type="Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
            systemData={"createdAt": _now_iso()},
        )
        props = stored.setdefault("properties", {})
        props["provisioningState"] = "Creating"
        if not props.get("scaleSettings"):
            props["scaleSettings"] = {"scaleType": "Default"}
        self.deployments[(endpoint, name)] = stored
        delay = 0.0 if ready else self.deployment_delay
        outcome = "Succeeded" if ready else self.deployment_outcome
        self.provisioning[key] = Provisioning(time.time() + delay, outcome)
        return key

    def _get_deployment(self, endpoint: str, name: str) -> dict[str, Any] | None:
        dep = self.deployments.get((endpoint, name))
        if dep is None:
            return None
        deleting = self.provisioning.get(f"delete:{endpoint}/{name}")
        if deleting is not None:
            if deleting.state("Deleting") == "Deleting":
                return dep
            del self.deployments[(endpoint, name)], self.provisioning[f"delete:{endpoint}/{name}"]
            return None
        busy = dep["properties"]["provisioningState"]
        dep["properties"]["provisioningState"] = self.provisioning[
            f"deployment:{endpoint}/{name}"
        ].state(busy)
        return dep

    # Dispatch ------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        """The answer to one request: status, extra headers and a JSON body."""
        with self._lock:
            return self._route(method, path, query, body)

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        if path == "/discovery":
            return 200, {}, {k: self.url for k in ("api", "catalog", "experimentation", "history")}
        if path.startswith("/operations/"):
            key = unquote(path.removeprefix("/operations/"))
            busy = "InProgress"
            state = self.provisioning[key].state(busy) if key in self.provisioning else "Succeeded"
            answer: dict[str, Any] = {"status": state}
            if state == "Failed":
                answer["error"] = {"code": "DeploymentFailed", "message": "image build failed"}
            return 200, {"Retry-After": str(self.retry_after_seconds)}, answer
        if path.startswith("/history/v1.0"):
            match = re.search(r"/runs/([^/]+)/details$", path)
            if match and match.group(1) in self.jobs:
                run = match.group(1)
                details: dict[str, Any] = {"runId": run, "status": "Failed"}
                if run in self.job_errors:
                    details["error"] = {
                        "error": {"code": "UserError", "message": self.job_errors[run]}
                    }
                return 200, {}, details
            return _not_found(path)
        if path == self.ws_path and method == "GET":
            refused = _api_version_refused("workspaces", query)
            return refused if refused else (200, {}, self._workspace())
        if not path.startswith(self.ws_path + "/"):
            return _not_found(path)
        rest = path.removeprefix(self.ws_path + "/").split("/")
        kind = "deployments" if rest[0] == "onlineEndpoints" and len(rest) > 2 else rest[0]
        refused = _api_version_refused(kind, query)
        if refused:
            return refused
        return self._route_workspace(method, rest, query, body)

    def _route_workspace(
        self, method: str, rest: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        kind = rest[0]
        if kind == "jobs" and rest[2:] == ["cancel"] and method == "POST":
            if rest[1] not in self.jobs:
                return _not_found(rest[1])
            self.job_scripts[rest[1]] = ["CancelRequested", "Canceled"]
            return 202, {}, None
        if kind == "jobs" and len(rest) == 2:
            name = rest[1]
            if method == "PUT":
                status, answer = self._put_job(name, body)
                return status, {}, answer
            job = self._get_job(name)
            return (200, {}, job) if job else _not_found(name)
        if kind == "models":
            return self._route_models(method, rest, query, body)
        if kind == "data":
            return self._route_data(method, rest)
        if kind == "datastores":
            return self._route_datastores(method, rest, query)
        if kind == "onlineEndpoints":
            return self._route_endpoints(method, rest, body)
        return _not_found("/".join(rest))

    def _route_models(
        self, method: str, rest: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        name = unquote(rest[1]) if len(rest) > 1 else ""
        if len(rest) == 2 and method == "GET":
            container = self._model_container(name)
            return (200, {}, container) if container else _not_found(name)
        if len(rest) == 3 and method == "GET":
            versions = sorted(
                self.models.get(name, {}).values(),
                key=lambda v: int(v["name"]) if v["name"].isdigit() else 0,
                reverse=True,
            )
            view = query.get("listViewType", "ActiveOnly")
            if view != "All":
                archived = view == "ArchivedOnly"
                versions = [
                    v for v in versions if bool(v["properties"].get("isArchived")) == archived
                ]
            wanted_tags = query.get("tags")
            if wanted_tags:
                pairs = [t.split("=", 1) for t in wanted_tags.split(",")]
                versions = [
                    v
                    for v in versions
                    if all(v["properties"].get("tags", {}).get(k) == val for k, val in pairs)
                ]
            if "$top" in query:
                versions = versions[: int(query["$top"])]
            return 200, {}, {"value": versions}
        if len(rest) == 4:
            version = rest[3]
            if method == "PUT":
                status, answer = self._put_model_version(name, version, body)
                return status, {}, answer
            stored = self.models.get(name, {}).get(version)
            return (200, {}, stored) if stored else _not_found(f"{name}:{version}")
        return _not_found("/".join(rest))

    def _route_endpoints(
        self, method: str, rest: list[str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        name = rest[1]
        if len(rest) == 2:
            if method == "PUT":
                traffic = (body or {}).get("properties", {}).get("traffic") or {}
                missing = sorted(
                    d for d, share in traffic.items() if share and (name, d) not in self.deployments
                )
                if missing:
                    message = f"Traffic cannot be set: deployment(s) {missing} do not exist"
                    return 400, {}, {"error": {"code": "BadArgument", "message": message}}
                key = self._put_endpoint(name, body)
                return 201, self._lro_headers(key), self.endpoints[name]
            endpoint = self._get_endpoint(name)
            return (200, {}, endpoint) if endpoint else _not_found(name)
        if len(rest) == 3 and rest[2] == "deployments" and method == "GET":
            listed = [
                self._get_deployment(ep, dep) for ep, dep in list(self.deployments) if ep == name
            ]
            return 200, {}, {"value": [d for d in listed if d is not None]}
        if len(rest) == 4 and rest[2] == "deployments":
            dep_name = rest[3]
            if method == "PUT":
                endpoint = self._get_endpoint(name)
                if endpoint is None:
                    return _not_found(name)
                busy = endpoint["properties"]["provisioningState"]
                if busy in ("Creating", "Updating", "Deleting"):
                    # Azure lets one operation at a time run on an endpoint: a deployment
                    # written while the endpoint is still provisioning is refused (409).
                    message = f"Endpoint {name} is {busy}; retry once it has finished"
                    return 409, {}, {"error": {"code": "Conflict", "message": message}}
                key = self._put_deployment(name, dep_name, body)
                return 201, self._lro_headers(key), self.deployments[(name, dep_name)]
            if method == "DELETE":
                # A long-running operation: 202 with its status URL; the deployment reads
                # "Deleting" until it is gone. Azure refuses to delete one that still has
                # traffic.
                dep = self.deployments.get((name, dep_name))
                if dep is None:
                    return 204, {}, None
                if self.endpoints[name]["properties"].get("traffic", {}).get(dep_name):
                    message = f"Deployment {dep_name} has traffic; move it away first"
                    return 400, {}, {"error": {"code": "BadArgument", "message": message}}
                key = f"delete:{name}/{dep_name}"
                dep["properties"]["provisioningState"] = "Deleting"
                self.provisioning[key] = Provisioning(time.time() + self.delete_delay, "Succeeded")
                headers = self._lro_headers(key)
                headers["Location"] = headers["Azure-AsyncOperation"]
                return 202, headers, None
            dep = self._get_deployment(name, dep_name)
            return (200, {}, dep) if dep else _not_found(dep_name)
        return _not_found("/".join(rest))

    def _lro_headers(self, key: str) -> dict[str, str]:
        op = f"{self.url}operations/{key}?api-version=2023-04-01"
        return {"Azure-AsyncOperation": op, "Retry-After": str(self.retry_after_seconds)}

    # Recording -----------------------------------------------------------------------------

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


#: A job's default artifacts output, as a model path names it.
_JOB_ARTIFACTS = re.compile(r"^azureml://jobs/([^/]+)/outputs/artifacts/(.*)$")
#: The workspace datastore holding jobs' artifacts.
ARTIFACT_STORE = "workspaceartifactstore"


def _same_path(a: Any, b: Any) -> bool:
    """Whether two model paths name the same files: the resource part of a full
    ``azureml://subscriptions/.../paths/`` URI compares without case, as resource ids do
    (the SDK sends back ``resourcegroups`` for a stored ``resourceGroups``); the path in
    the datastore exactly."""
    if not (isinstance(a, str) and isinstance(b, str)) or "/paths/" not in a + b:
        return bool(a == b)
    (head_a, _, tail_a), (head_b, _, tail_b) = a.partition("/paths/"), b.partition("/paths/")
    return head_a.lower() == head_b.lower() and tail_a == tail_b


#: What a job PUT may change on an existing job (Azure ML: description, tags, display
#: name, properties and archive state); status and server-side fields are not settings.
_JOB_MUTABLE = ("description", "tags", "displayName", "properties", "isArchived")
_JOB_SERVER_SIDE = ("status", "services", "creationContext")


def _job_settings(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties", {})
    return {k: v for k, v in props.items() if k not in _JOB_MUTABLE + _JOB_SERVER_SIDE}


#: The api-versions azure-ai-ml 1.35.2 sends for each kind of resource (its generated REST
#: clients pin one per operation group: a job's cancel goes out with an older one than its
#: GET and PUT, an endpoint's and a deployment's calls with two). Azure Resource Manager
#: refuses a version the resource provider does not serve with 400
#: NoRegisteredProviderFound; the fake refuses any other than these, so a change on the
#: wire fails a test instead of passing unseen.
API_VERSIONS: dict[str, frozenset[str]] = {
    "workspaces": frozenset({"2024-10-01-preview"}),
    "datastores": frozenset({"2024-10-01-preview"}),
    "jobs": frozenset({"2024-01-01-preview", "2023-04-01-preview"}),
    "models": frozenset({"2023-08-01-preview"}),
    "data": frozenset({"2023-04-01-preview"}),
    "onlineEndpoints": frozenset({"2022-02-01-preview", "2023-04-01-preview"}),
    "deployments": frozenset({"2022-02-01-preview", "2023-04-01-preview"}),
}


def _api_version_refused(
    kind: str, query: dict[str, str]
) -> tuple[int, dict[str, str], Any] | None:
    expected = API_VERSIONS.get(kind)
    asked = query.get("api-version")
    if expected is None or asked in expected:
        return None
    message = (
        f"No registered resource provider found for API version '{asked}' and type "
        f"'workspaces/{kind}' (the fake serves {', '.join(sorted(expected))}, what "
        "azure-ai-ml 1.35.2 sends)"
    )
    return 400, {}, {"error": {"code": "NoRegisteredProviderFound", "message": message}}


def _not_found(what: str) -> tuple[int, dict[str, str], Any]:
    message = f"{what} could not be found"
    return 404, {}, {"error": {"code": "UserError", "message": message}}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Tracebacks, except for a socket error: a client gone mid-request (reset, killed)."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeAzureML
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        path = unquote(parts.path) if "/models/" not in parts.path else parts.path
        self.owner.record(Call(self.command, path, query, body))
        fault = self.owner._fault_for(self.command, path)
        if fault is not None:
            if fault.status is None:
                self._reset()
                return
            error = {"error": {"code": "Injected", "message": f"injected {fault.status}"}}
            self._reply(fault.status, fault.headers, error)
            return
        chance = self.owner._random_fault(path)
        if chance == "reset":
            self._reset()
            return
        if chance == "429":
            error = {"error": {"code": "TooManyRequests", "message": "injected 429"}}
            self._reply(429, {"Retry-After": str(self.owner.retry_after_seconds)}, error)
            return
        if chance == "503":
            error = {"error": {"code": "ServiceUnavailable", "message": "injected 503"}}
            self._reply(503, {}, error)
            return
        status, headers, answer = self.owner.handle(self.command, path, query, body)
        if chance == "reset_after":
            self._reset()
            return
        self._reply(status, headers, answer)

    def _reset(self) -> None:
        """Close with RST instead of FIN: the client sees a reset connection."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _reply(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve
