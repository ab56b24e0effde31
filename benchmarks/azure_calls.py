"""Azure ML control-plane calls per request, measured against the loopback fake.

Drives the real SDK through ``AzureEngine``, ``AzureRegistry`` and ``AzureDeployer`` the
way the worker does: ``ensure_job`` on every re-check of a job that runs for a simulated
duration (the clock is simulated, the HTTP calls are real), then registration and a
blue/green rollout re-checked until done. Prints a markdown table (``--json`` for a file).

    python -m benchmarks.azure_calls --hours 0.25 --hours 1 --hours 8 --recheck 15
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from azureml_fake.certs import make_loopback_cert  # noqa: E402
from azureml_fake.fixtures import (  # noqa: E402
    Iteration,
    StaticCredential,
    TrackingServer,
    fill_automl_parent,
)
from azureml_fake.server import FakeAzureML  # noqa: E402

from automl_service.engines.azure.client import build_ml_client  # noqa: E402
from automl_service.engines.azure.deployer import AzureDeployer  # noqa: E402
from automl_service.engines.azure.engine import AzureEngine  # noqa: E402
from automl_service.engines.azure.registry import AzureRegistry  # noqa: E402
from automl_service.engines.azure.status import PollSchedule  # noqa: E402
from automl_service.engines.azure.tracking import WorkspaceTracking  # noqa: E402
from automl_service.errors import NotReady  # noqa: E402
from automl_service.metrics import Goal  # noqa: E402
from automl_service.request import AutoMLRequest, parse_request  # noqa: E402
from automl_service.runs import RunRecord  # noqa: E402
from automl_service.selection import select_best  # noqa: E402
from automl_service.settings import AzureSettings  # noqa: E402
from benchmarks.tracking_server import mlflow_server  # noqa: E402


def make_request(request_id: str) -> AutoMLRequest:
    return parse_request(
        json.dumps(
            {
                "request_id": request_id,
                "task": "classification",
                "training_data": "azureml://datastores/workspaceblobstore/paths/churn/",
                "target_column_name": "churned",
                "registration": {"model_name": "churn"},
                "deployment": {"endpoint_name": "churn-ep"},
            }
        )
    )


def kinds(fake: FakeAzureML, since: int) -> Counter[str]:
    counted: Counter[str] = Counter()
    for c in fake.control_plane_calls()[since:]:
        tail = c.path.removeprefix(fake.ws_path)
        resource = "/".join(p for p in tail.split("/")[1::2] if p) or "workspace"
        counted[f"{c.method} {resource}"] += 1
    return counted


def job_polls(
    client: Any, fake: FakeAzureML, server: TrackingServer, hours: float, recheck: float
) -> dict[str, Any]:
    """Calls for one job running ``hours``, re-checked every ``recheck`` seconds, then the
    scan of its 200 iterations (plus setup runs) on the tracking server."""
    now = [time.time()]  # simulated, but starting at the fake's own clock
    ends = now[0] + hours * 3600
    tracking = WorkspaceTracking(server.url)
    engine = AzureEngine(client, tracking=tracking, poll=PollSchedule(), clock=lambda: now[0])
    request = make_request(f"bench-{uuid.uuid4().hex[:8]}")
    children = [Iteration(str(n), {"accuracy": 0.5 + n / 1000}) for n in range(200)]
    children += [Iteration(s, {}) for s in ("setup", "featurize", "ModelExplain")]
    fill_automl_parent(server, request.job_name, children, best_child=f"{request.job_name}_199")
    fake.default_job_script = ["Running"]
    before = len(fake.control_plane_calls())
    rechecks = 0
    while True:
        if now[0] >= ends:
            fake.job_scripts[request.job_name] = ["Completed"]
        status = engine.ensure_job(request)
        rechecks += 1
        if status.state.terminal:
            break
        now[0] += recheck
    runs = engine.child_runs(request.job_name)
    counted = kinds(fake, before)
    return {
        "hours": hours,
        "worker_rechecks": rechecks,
        "job_calls": sum(counted.values()),
        "per_kind": dict(counted),
        "iterations": len(runs),
        "mlflow_calls": tracking.calls,
    }


def rollout_calls(client: Any, fake: FakeAzureML) -> dict[str, Any]:
    """Calls to register a model and move an endpoint to it, re-checked like the worker."""
    fake.add_live_deployment("churn-ep", "blue", "azureml:churn:0")
    request = make_request(f"bench-{uuid.uuid4().hex[:8]}")
    runs = [RunRecord(f"{request.job_name}_0", "FINISHED", {"accuracy": 0.9})]
    selection = select_best(runs, "accuracy", Goal.MAXIMIZE)
    registry, deployer = AzureRegistry(client), AzureDeployer(client)
    before = len(fake.control_plane_calls())
    rechecks = 0
    while True:
        rechecks += 1
        model = registry.register(request, selection)
        try:
            deployer.deploy(request, model, selection.value)
            break
        except NotReady:
            continue
    counted = kinds(fake, before)
    return {"worker_rechecks": rechecks, "calls": sum(counted.values()), "per_kind": dict(counted)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, action="append")
    parser.add_argument("--recheck", type=float, default=15.0, help="worker re-check seconds")
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    args = parser.parse_args(argv)
    hours = args.hours or [0.25, 1.0, 8.0]
    with tempfile.TemporaryDirectory() as tmp:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        root = Path(tmp)
        cert, key = make_loopback_cert(root)
        os.environ["REQUESTS_CA_BUNDLE"] = str(cert)
        db = f"sqlite:///{root / 'mlflow.db'}"
        store_class: Any = SqlAlchemyStore  # MLflow ships no type hints
        store = store_class(db, str(root / "artifacts"))
        fake = FakeAzureML(cert, key).start()
        try:
            with mlflow_server(db, root / "artifacts", root / "server.log") as url:
                server = TrackingServer(url, None, store)  # type: ignore[arg-type]
                settings = AzureSettings(
                    subscription_id=fake.subscription_id,
                    resource_group=fake.resource_group,
                    workspace_name=fake.workspace,
                    compute="cpu-cluster",
                )
                client = build_ml_client(
                    settings,
                    StaticCredential(),
                    cloud=f"bench-{uuid.uuid4().hex[:8]}",
                    cloud_metadata=fake.cloud_metadata(),
                )
                started = time.perf_counter()
                jobs = [job_polls(client, fake, server, h, args.recheck) for h in hours]
                rollout = rollout_calls(client, fake)
                elapsed = time.perf_counter() - started
        finally:
            fake.stop()
    print(
        f"| job runs | worker re-checks (every {args.recheck:g} s) | Azure job calls "
        "| MLflow calls (best-run tag + scan of 200 iterations) |"
    )
    print("|---|---|---|---|")
    for row in jobs:
        print(
            f"| {row['hours']:g} h | {row['worker_rechecks']} | {row['job_calls']} "
            f"| {row['mlflow_calls']} |"
        )
    print()
    print(
        f"register + blue/green rollout: {rollout['calls']} calls over "
        f"{rollout['worker_rechecks']} re-checks: {rollout['per_kind']}"
    )
    print(f"(measured in {elapsed:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps({"jobs": jobs, "rollout": rollout}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
