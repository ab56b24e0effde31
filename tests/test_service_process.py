"""The worker as an operable process: health over HTTP, drain exit codes, graceful
shutdown, submit --wait, status, JSON logs and secrets, all against real processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures_service import (
    CANARY,
    START_TIMEOUT,
    Service,
    free_port,
    http_get,
    json_lines,
    wait_until,
)
from fixtures_worker import iris_request, mlflow_client, parent_runs

from automl_service.cli import Shutdown
from automl_service.queues.sqlite import SqliteQueue
from automl_service.result_store import SqliteResultStore
from automl_service.results import RequestResult, RequestState

pytest_plugins = ["fixtures_service"]


HEALTH_PATHS = ["/requests/ops", "/requests/ops-bad", "/metrics", "/readyz", "/healthz"]


def queue_of(service: Service) -> SqliteQueue:
    return SqliteQueue(service.data_dir / "queue.db", "automl-requests")


def result_of(service: Service, request_id: str) -> RequestResult | None:
    return SqliteResultStore(service.data_dir / "results.db").get(request_id)


def has_state(service: Service, request_id: str, *states: RequestState) -> bool:
    result = result_of(service, request_id)
    return result is not None and result.state in states


def store_client(service: Service) -> Any:
    """An MLflow client on the service's local store."""
    return mlflow_client(f"sqlite:///{(service.data_dir / 'mlflow.db').resolve()}")


def write_json(path: Path, body: dict[str, Any]) -> str:
    path.write_text(json.dumps(body))
    return str(path)


# Health endpoints ------------------------------------------------------------------------


@pytest.mark.process
def test_health_endpoints_of_a_running_worker(service: Service) -> None:
    """A worker started with a health port answers /healthz, /readyz and /metrics over
    HTTP; /readyz turns 503 while the queue file is unusable and 200 once it is back;
    `health` exits 0 against it and 1 against a dead port; a second worker on the same
    port exits 2; SIGINT stops it with 0; no answer holds the secret."""
    port = free_port()
    env = {
        "AUTOML_SERVICE_HEALTH__ENABLED": "true",
        "AUTOML_SERVICE_HEALTH__PORT": str(port),
        "AUTOML_SERVICE_HEALTH__STALE_AFTER_SECONDS": "7",
    }
    worker = service.start("worker", env=env)
    base = f"http://127.0.0.1:{port}"
    answers: list[str] = []

    def get(path: str) -> tuple[int, str]:
        status, body = http_get(base + path)
        answers.append(body)
        return status, body

    wait_until(lambda: get("/readyz")[0] == 200, START_TIMEOUT, "/readyz 200")
    status, body = get("/healthz")
    assert status == 200
    assert json.loads(body)["stale_after_seconds"] == 7.0
    status, body = get("/metrics")
    assert status == 200
    assert "automl_service_heartbeat_age_seconds" in body
    assert get("/requests/nothing-here")[0] == 404

    assert service.run("health", env=env).returncode == 0
    taken = service.run("worker", env=env)
    assert taken.returncode == 2 and "cannot serve health" in taken.stderr
    dead = f"http://127.0.0.1:{free_port()}"
    assert service.run("health", "--url", dead, "--timeout", "2").returncode == 1

    # The queue file is replaced by a directory: not ready, but still alive.
    queue_db = service.data_dir / "queue.db"
    aside = service.tmp_path / "aside"
    aside.mkdir()
    for path in service.data_dir.glob("queue.db*"):
        shutil.move(path, aside / path.name)
    queue_db.mkdir()
    status, body = wait_until(
        lambda: (answer := get("/readyz"))[0] == 503 and answer, 30, "/readyz 503"
    )
    assert json.loads(body)["checks"]["queue"] != "ok"
    wait_until(
        lambda: "worker.queue_unavailable" in service.log_file.read_text(), 30, "the loop to notice"
    )
    assert get("/healthz")[0] == 200  # the loop carries on through the outage
    queue_db.rmdir()
    for path in aside.iterdir():
        shutil.move(path, service.data_dir / path.name)
    wait_until(lambda: get("/readyz")[0] == 200, 30, "/readyz 200 again")

    code, _ = service.stop(worker, signum=signal.SIGINT)
    log = service.log_file.read_text()
    assert code == 0, log
    assert http_get(base + "/healthz")[0] == 0  # the server went with the worker
    events = {line["event"] for line in json_lines(log)}
    assert {
        "health.listening",
        "worker.queue_unavailable",
        "worker.stopping",
        "worker.stopped",
    } <= events
    assert not [answer for answer in [*answers, log] if CANARY in answer]


# drain: the scheduled container job -------------------------------------------------------


@pytest.mark.process
def test_drain_exit_codes(service: Service, tmp_path: Path) -> None:
    """`drain` exits 0 on an empty queue (also with a deadline), 2 on bad settings and 3
    when the queue cannot be used, and says why without the secret."""
    empty = service.run("drain")
    assert empty.returncode == 0, empty.stderr
    assert service.run("drain", "--deadline", "60").returncode == 0

    bad = service.run("drain", env={"AUTOML_SERVICE_WORKER__BATCH_SIZE": "0"})
    assert bad.returncode == 2
    assert "bad settings" in bad.stderr

    unusable = tmp_path / "not-a-file"
    unusable.mkdir()
    down = service.run("drain", env={"AUTOML_SERVICE_QUEUE__SQLITE_PATH": str(unusable)})
    assert down.returncode == 3
    assert "unreachable" in down.stderr
    assert not [out for out in service.outputs if CANARY in out]


# A request's life across processes ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.process
def test_sigterm_mid_training_then_restart_finishes_once(service: Service) -> None:
    """SIGTERM while the job trains stops the worker with exit 0 within the grace period;
    a restarted worker finishes the request with one job and one model version; `submit
    --wait` shows progress and exits 0 or 1 by the outcome; a finished request re-sent
    is drained with exit 0; logs are JSON lines that carry request id, job name and step;
    the secret appears in no log, result or report."""
    body = iris_request("ops")
    queue_of(service).send(json.dumps(body))
    first = service.start("worker")
    wait_until(lambda: has_state(service, "ops", RequestState.TRAINING), START_TIMEOUT, "training")
    code, took = service.stop(first)
    assert code == 0, service.log_file.read_text()
    assert took < 10.0 + 5.0  # the grace period, and then some for a loaded machine
    assert has_state(service, "ops", RequestState.TRAINING)  # the job outlives the worker

    port = free_port()
    second = service.start(
        "worker",
        env={"AUTOML_SERVICE_HEALTH__ENABLED": "true", "AUTOML_SERVICE_HEALTH__PORT": str(port)},
    )
    # Re-submitting the same request waits for the one already under way.
    request_file = write_json(service.tmp_path / "ops.json", body)
    bad = iris_request("ops-bad", target_column_name="species")
    bad_file = write_json(service.tmp_path / "ops-bad.json", bad)
    outcomes: dict[str, Any] = {}

    def submit(name: str, path: str) -> None:
        outcomes[name] = service.run("submit", "--wait", "--timeout", "240", path, timeout=300)

    waiting = [
        threading.Thread(target=submit, args=("ok", request_file)),
        threading.Thread(target=submit, args=("bad", bad_file)),
    ]
    for thread in waiting:
        thread.start()
    for thread in waiting:
        thread.join(timeout=320)
    answers = [http_get(f"http://127.0.0.1:{port}{path}") for path in HEALTH_PATHS]
    code, _ = service.stop(second)
    assert code == 0, service.log_file.read_text()
    assert [status for status, _ in answers] == [200] * len(HEALTH_PATHS)
    assert json.loads(answers[0][1])["state"] == "succeeded"
    assert "species" in json.loads(answers[1][1])["error"]

    ok, failed = outcomes["ok"], outcomes["bad"]
    assert ok.returncode == 0, ok.stderr
    assert "ops: succeeded" in ok.stderr  # progress lines end with the outcome
    assert failed.returncode == 1, failed.stderr
    assert "ops-bad: failed" in failed.stderr
    assert "species" in failed.stdout

    result = result_of(service, "ops")
    assert result is not None and result.state is RequestState.SUCCEEDED, result
    assert result.job_name is not None
    assert len(parent_runs(store_client(service), result.job_name)) == 1
    versions = store_client(service).search_model_versions("name = 'iris-ops'")
    assert [str(v.version) for v in versions] == [result.model_version] == ["1"]

    # A finished request re-sent: drain advances it (nothing to redo) and exits 0.
    queue_of(service).send(json.dumps(body))
    drained = service.run("drain")
    assert drained.returncode == 0, drained.stderr
    assert queue_of(service).visible_count() == 0
    assert len(store_client(service).search_model_versions("name = 'iris-ops'")) == 1

    listed = service.run("--json", "status")
    states = {r["request_id"]: r["state"] for r in json.loads(listed.stdout)}
    assert states == {"ops": "succeeded", "ops-bad": "failed"}
    table = service.run("status")
    assert "ops-bad" in table.stdout and "failed" in table.stdout
    report_path = service.tmp_path / "ops.html"
    assert service.run("report", "ops", "--out", str(report_path)).returncode == 0
    report = report_path.read_text()
    assert result.best_run_id is not None and result.best_run_id in report

    log = service.log_file.read_text() + drained.stderr
    lines = json_lines(log)
    of_request = [line for line in lines if line.get("request_id") == "ops"]
    assert of_request
    for line in of_request:
        assert line["job_name"] == result.job_name
        assert line["step"] in {"settle", "job", "select", "register", "deploy"}, line
    assert {"job", "register"} <= {line["step"] for line in of_request}
    assert {line["event"] for line in lines} >= {"worker.stopping", "worker.request_ended"}
    texts = [*service.outputs, log, report, *(body for _, body in answers)]
    assert not [text for text in texts if CANARY in text]


# Shutdown logic ----------------------------------------------------------------------------


def test_shutdown_abandons_after_the_grace_period() -> None:
    """A stop request sets the event at once; the step still under way after the grace
    period is abandoned with exit 0, after the clean-ups ran; a second request abandons
    at once."""
    exits: list[int] = []
    cleaned: list[str] = []
    shutdown = Shutdown(0.3, exit=exits.append)
    shutdown.on_abandon(lambda: cleaned.append("health"))
    shutdown.request("SIGTERM")
    assert shutdown.event.is_set()
    assert exits == []
    wait_until(lambda: exits, 5, "abandon")
    assert exits == [0]
    assert cleaned == ["health"]

    again = Shutdown(60, exit=exits.append)
    again.request("SIGINT")
    started = time.monotonic()
    again.request("SIGINT")
    assert exits == [0, 0]
    assert time.monotonic() - started < 5
    again.cancel()


def test_shutdown_exits_even_when_its_log_stream_is_gone(tmp_path: Path) -> None:
    """Abandoning flushes the log handlers best effort: a stream already closed (a pipe
    whose reader went away) must not keep the process from exiting."""
    from automl_service.logs import configure_logging
    from automl_service.settings import LoggingSettings

    stream = (tmp_path / "log").open("w")
    configure_logging(LoggingSettings(format="json"), stream=stream)
    stream.close()
    exits: list[int] = []
    Shutdown(60, exit=exits.append).abandon("test")
    assert exits == [0]


def start_tracking_server(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    """A real `mlflow server` on 127.0.0.1:port over a SQLite store in tmp_path."""
    log = (tmp_path / "tracking.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--workers", "1",
         "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'tracking.db'}",
         "--default-artifact-root", (tmp_path / "tracking-artifacts").as_uri()],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_until(
        lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 200,
        START_TIMEOUT,
        "the tracking server",
    )
    return process


def stop_tracking_server(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.process
def test_readiness_follows_the_tracking_server(
    service: Service, tmp_path: Path, mlflow_db_template: Path
) -> None:
    """With a remote MLflow tracking server, /readyz turns 503 (naming the backend) while
    the server is down and 200 once it is back; the worker stays alive throughout."""
    # A migrated store spares the server its own migration run (seconds).
    shutil.copyfile(mlflow_db_template, tmp_path / "tracking.db")
    port, tracking_port = free_port(), free_port()
    env = {
        "AUTOML_SERVICE_HEALTH__ENABLED": "true",
        "AUTOML_SERVICE_HEALTH__PORT": str(port),
        "AUTOML_SERVICE_LOCAL__TRACKING_URI": f"http://127.0.0.1:{tracking_port}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
    }
    base = f"http://127.0.0.1:{port}"
    tracking = start_tracking_server(tmp_path, tracking_port)
    worker = service.start("worker", env=env)
    try:
        wait_until(lambda: http_get(base + "/readyz")[0] == 200, START_TIMEOUT, "/readyz 200")
        stop_tracking_server(tracking)
        _, body = wait_until(
            lambda: (answer := http_get(base + "/readyz"))[0] == 503 and answer,
            60,
            "/readyz 503",
        )
        checks = json.loads(body)["checks"]
        assert checks["backend"] != "ok" and checks["queue"] == "ok"
        assert http_get(base + "/healthz")[0] == 200
        tracking = start_tracking_server(tmp_path, tracking_port)
        wait_until(lambda: http_get(base + "/readyz")[0] == 200, 60, "/readyz 200 again")
    finally:
        stop_tracking_server(tracking)
    code, _ = service.stop(worker)
    assert code == 0, service.log_file.read_text()
