"""Serving speed: one local endpoint (``automl-service serve``) against ``mlflow models
serve`` for the same registered model, and the model's own predict time.

Trains and deploys a ``breast_cancer`` classifier through the service (``submit``, then
``drain --wait``), starts both servers on 127.0.0.1, and sends each the same requests
one after another over one keep-alive connection: ``--single`` requests of one row and
``--batch`` requests of 1,000 rows, as ``dataframe_split`` JSON. Prints p50 and p99
latency and rows per second for each server and size, beside the loaded model's own time
for the same rows (p50 over as many calls): its scoring as the endpoint calls it (a matrix
of numbers in, labels and probabilities out) and its pyfunc ``predict`` as ``mlflow models
serve`` calls it (a table in, a table out).

    python -m benchmarks.serving_speed --single 500 --batch 50
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ENDPOINT = "speed"
MODEL = "speed-model"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_and_deploy(data_dir: Path, env: dict[str, str]) -> None:
    request = {
        "request_id": "speed",
        "task": "classification",
        "training_data": "sample:breast_cancer",
        "target_column_name": "target",
        "training": {"allowed_algorithms": ["LightGBM"], "enable_vote_ensemble": False},
        "limits": {"timeout_seconds": 15},
        "registration": {"model_name": MODEL},
        "deployment": {"endpoint_name": ENDPOINT},
    }
    path = data_dir.parent / "request.json"
    path.write_text(json.dumps(request))
    for command in (["submit", str(path)], ["drain", "--wait", "--deadline", "300"]):
        subprocess.run(
            [sys.executable, "-m", "automl_service", *command],
            env=env,
            check=True,
            capture_output=True,
        )


def wait_until_up(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on {port} exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server on {port} did not come up")


def timed_posts(port: int, path: str, body: bytes, count: int) -> list[float]:
    """Seconds each of ``count`` POSTs took, over one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        answer.read()
        seconds.append(time.perf_counter() - started)
        if answer.status != 200:
            raise SystemExit(f"POST {path} answered {answer.status}")
    connection.close()
    return seconds


def timed_calls(call: Callable[[], Any], count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def row(label: str, rows: int, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    p50 = statistics.median(ordered)
    rate = rows / p50 if p50 else float("inf")
    return f"| {label} | {rows} | {p50 * 1000:.2f} | {p99 * 1000:.2f} | {rate:,.0f} |"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=int, default=500, help="one-row requests per server")
    parser.add_argument("--batch", type=int, default=50, help="1,000-row requests per server")
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="automl-serving-")) / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOML_SERVICE_")}
    env["AUTOML_SERVICE_LOCAL__DATA_DIR"] = str(data_dir)
    train_and_deploy(data_dir, env)

    import mlflow
    import pandas as pd

    from automl_service.engines.local.datasets import load_table
    from automl_service.engines.local.served import Served

    store = f"sqlite:///{data_dir / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/1")
    served = Served.of(model)
    flaml, scorer = served.flaml, served.scorer
    if flaml is None or scorer is None:
        raise SystemExit("the model does not score numbers in numpy")
    features = load_table("sample:breast_cancer").drop(columns=["target"])
    many = pd.concat([features] * 2, ignore_index=True).head(1000)
    bodies = {
        1: json.dumps({"dataframe_split": features.head(1).to_dict(orient="split")}).encode(),
        1000: json.dumps({"dataframe_split": many.to_dict(orient="split")}).encode(),
    }
    ours_port, theirs_port = free_port(), free_port()
    # mlflow starts uvicorn by name: the environment's own bin folder comes first.
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    mlflow_env = {**env, "MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": store, "PATH": path}
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "automl_service", "serve", "--port", str(ours_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL}/1",
             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(theirs_port)],
            env=mlflow_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        ),
    ]  # fmt: skip
    lines = [
        "| server | rows per request | p50 ms | p99 ms | rows/s at p50 |",
        "|---|---:|---:|---:|---:|",
    ]
    try:
        wait_until_up(ours_port, "/endpoints", servers[0])
        wait_until_up(theirs_port, "/ping", servers[1])
        ours = f"/endpoints/{ENDPOINT}/score"
        for rows, count in ((1, args.single), (1000, args.batch)):
            timed_posts(ours_port, ours, bodies[rows], 5)  # warm both
            timed_posts(theirs_port, "/invocations", bodies[rows], 5)
            lines.append(row("automl-service serve", rows, timed_posts(
                ours_port, ours, bodies[rows], count)))  # fmt: skip
            lines.append(row("mlflow models serve", rows, timed_posts(
                theirs_port, "/invocations", bodies[rows], count)))  # fmt: skip
            frame = features.head(1) if rows == 1 else many
            matrix = frame[list(scorer.columns)].to_numpy(dtype="float64")
            lines.append(row("the model's scoring, as the endpoint calls it", rows, timed_calls(
                lambda m=matrix: flaml.scored_numbers(m, scorer), count)))  # fmt: skip
            lines.append(row("the model's pyfunc predict", rows, timed_calls(
                lambda frame=frame: model.predict(frame), count)))  # fmt: skip
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
