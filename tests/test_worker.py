"""The worker end to end on the local backend: real FLAML, real MLflow, real SQLite queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures_worker import iris_body, iris_request, make_worker, mlflow_client, parent_runs

from automl_service.backends import build_queue, build_results
from automl_service.exit_codes import EXIT_FAILED
from automl_service.queues.sqlite import SqliteQueue
from automl_service.results import RequestResult, RequestState
from automl_service.settings import Settings
from automl_service.tags import DATA_TAG
from automl_service.waiting import wait_for_results
from automl_service.worker import CRASH_AFTER_STEP_ENV, Worker


def run_until_ended(
    worker: Worker, ids: list[str], timeout: float = 180.0
) -> dict[str, RequestResult]:
    """Run the worker's batches until every request in ``ids`` has ended."""
    stop = threading.Event()
    return wait_for_results(
        worker.results, ids, timeout=timeout, step=lambda: worker.run_once(stop), interval=0.2
    )


def sqlite_queue(worker: Worker) -> SqliteQueue:
    """The worker's queue: the SQLite one the settings name."""
    assert isinstance(worker.queue, SqliteQueue)
    return worker.queue


def model_versions(settings: Settings, name: str) -> list[Any]:
    client = mlflow_client(settings.local.mlflow_uri)
    return list(client.search_model_versions(f"name = '{name}'"))


@pytest.mark.slow
def test_request_end_to_end(settings: Settings) -> None:
    """A queued request ends registered, with the best child run by its metric."""
    worker = make_worker(settings)
    queue = sqlite_queue(worker)
    queue.send(iris_body("e2e"))
    result: RequestResult = run_until_ended(worker, ["e2e"])["e2e"]

    assert result.state is RequestState.SUCCEEDED, result.error
    runs = worker.backend.engine.child_runs(result.job_name or "")
    finished = [r for r in runs if r.status == "FINISHED" and "accuracy" in r.metrics]
    assert finished
    assert result.best_value == max(r.metrics["accuracy"] for r in finished)
    assert result.leaderboard[0].run_id == result.best_run_id
    values = [row.value for row in result.leaderboard]
    assert values == sorted(values, reverse=True)
    [version] = model_versions(settings, "iris-e2e")
    assert str(version.version) == result.model_version
    assert version.run_id == result.best_run_id
    assert version.tags["automl_service.request_id"] == "e2e"
    assert worker.stats.counters["errors"] == 0
    assert worker.stats.counters["rechecked"] >= 1
    assert result.attempts == 0
    assert queue.visible_count() == 0


@pytest.mark.slow
def test_malformed_messages_go_to_poison_and_good_ones_finish(settings: Settings) -> None:
    """Garbage and schema errors land in the poison queue with the reason; the good
    requests beside them are done."""
    worker = make_worker(settings)
    queue = sqlite_queue(worker)
    queue.send(iris_body("good-1"))
    queue.send("this is not json")
    queue.send(json.dumps({"task": "classification", "training_data": "sample:iris"}))
    queue.send(iris_body("good-2"))

    results = run_until_ended(worker, ["good-1", "good-2"])

    assert {r.state for r in results.values()} == {RequestState.SUCCEEDED}
    poison = {entry.body: entry.reason for entry in queue.poisoned()}
    assert len(poison) == 2
    assert "not JSON" in poison["this is not json"]
    [schema_reason] = [reason for body, reason in poison.items() if body.startswith("{")]
    assert "target_column_name: Field required" in schema_reason
    assert worker.stats.counters["poisoned"] == 2
    assert queue.visible_count() == 0


@pytest.mark.slow
def test_failed_job_ends_the_request_with_its_reason(settings: Settings) -> None:
    """A missing target column fails the request once, with the column in the reason,
    instead of retrying forever; the message leaves the queue (not as poison)."""
    worker = make_worker(settings)
    queue = sqlite_queue(worker)
    queue.send(iris_body("bad-target", target_column_name="species"))
    result = run_until_ended(worker, ["bad-target"])["bad-target"]

    assert result.state is RequestState.FAILED
    assert "species" in (result.error or "")
    assert queue.visible_count() == 0
    assert queue.poisoned() == []


@pytest.mark.slow
def test_resent_request_is_the_same_request(settings: Settings) -> None:
    """The same message sent again after it finished makes no new job or version."""
    worker = make_worker(settings)
    queue = sqlite_queue(worker)
    body = json.dumps({k: v for k, v in iris_request("x").items() if k != "request_id"})
    queue.send(body)
    first = run_until_ended(worker, [_id_of(body)])[_id_of(body)]
    queue.send(body)
    worker.run_once()
    second = worker.results.get(_id_of(body))

    assert second is not None and second.state is RequestState.SUCCEEDED
    assert second.model_version == first.model_version
    assert len(parent_runs(mlflow_client(settings.local.mlflow_uri))) == 1
    assert len(model_versions(settings, "iris-x")) == 1


@pytest.mark.slow
def test_new_data_under_the_same_path_trains_a_new_model_version(
    settings: Settings, tmp_path: Path
) -> None:
    """A monthly retrain that reads a fixed path: the same message after the file changed
    is a new request and a new version of the model, each version tagged with the data it
    was trained on; sent again unchanged, it is answered from its result."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame
    data = tmp_path / "monthly.csv"
    iris.iloc[::2].to_csv(data, index=False)
    worker = make_worker(settings)
    queue = sqlite_queue(worker)
    request = iris_request("x", training_data=str(data), limits={"timeout_seconds": 8})
    body = json.dumps({k: v for k, v in request.items() if k != "request_id"})
    queue.send(body)
    first = next_ended(worker, set())
    iris.to_csv(data, index=False)  # new rows under the same path
    queue.send(body)
    second = next_ended(worker, {first.request_id})
    queue.send(body)
    worker.run_once()

    assert first.request_id != second.request_id
    assert first.state is second.state is RequestState.SUCCEEDED
    assert (first.model_version, second.model_version) == ("1", "2")
    versions = {str(v.version): v for v in model_versions(settings, "iris-x")}
    assert set(versions) == {"1", "2"}
    tags = [versions[n].tags[DATA_TAG] for n in ("1", "2")]
    assert tags == [first.data_fingerprint, second.data_fingerprint] and tags[0] != tags[1]
    assert len(parent_runs(mlflow_client(settings.local.mlflow_uri))) == 2
    assert {r.request_id for r in worker.results.recent(20)} == {
        first.request_id,
        second.request_id,
    }


def next_ended(worker: Worker, known: set[str], timeout: float = 180.0) -> RequestResult:
    """Run the worker's batches until a request not in ``known`` has ended; that one."""
    ends = time.time() + timeout
    while time.time() < ends:
        worker.run_once(threading.Event())
        for result in worker.results.recent(20):
            if result.request_id not in known and result.state.terminal:
                return result
        time.sleep(0.2)
    raise AssertionError(f"no new request ended in {timeout} s")


def _id_of(body: str) -> str:
    from automl_service.request import parse_request

    return parse_request(body).id


# Crash safety: a worker killed at any point loses and duplicates nothing -------------


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOML_SERVICE_")}
    env.update(
        AUTOML_SERVICE_LOCAL__DATA_DIR=str(settings.local.data_dir),
        AUTOML_SERVICE_WORKER__POLL_INTERVAL_SECONDS="0.2",
        AUTOML_SERVICE_WORKER__MAX_POLL_INTERVAL_SECONDS="0.5",
        AUTOML_SERVICE_WORKER__RECHECK_SECONDS="0.5",
        AUTOML_SERVICE_WORKER__MAX_RECHECK_SECONDS="1",
        AUTOML_SERVICE_WORKER__VISIBILITY_TIMEOUT_SECONDS="2",
        AUTOML_SERVICE_LOGGING__FORMAT="json",
    )
    env.update(extra)
    return env


def start_worker(settings: Settings, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "automl_service", "worker"],
        env=worker_env(settings, **extra),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_for_state(
    settings: Settings, request_id: str, states: set[RequestState], timeout: float
) -> RequestResult:
    results = build_results(settings)
    ends = time.time() + timeout
    while time.time() < ends:
        result = results.get(request_id)
        if result is not None and result.state in states:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{request_id} never reached {states}: {results.get(request_id)}")


@pytest.mark.parametrize("crash_point", ["job", "training", "select", "register"])
@pytest.mark.slow
@pytest.mark.process
def test_worker_killed_at_any_point_loses_and_duplicates_nothing(
    settings: Settings, tmp_path: Path, crash_point: str
) -> None:
    """SIGKILL at a step boundary or mid-training, then a restart: the request ends with
    exactly one job, one parent run and one model version."""
    build_queue(settings).send(iris_body("crash"))
    log = tmp_path / "worker.log"
    if crash_point == "training":
        first = start_worker(settings, log)
        wait_for_state(settings, "crash", {RequestState.TRAINING}, timeout=60)
        time.sleep(0.5)
        first.send_signal(signal.SIGKILL)
    else:
        first = start_worker(settings, log, **{CRASH_AFTER_STEP_ENV: crash_point})
    assert first.wait(timeout=120) == -signal.SIGKILL, log.read_text()

    second = start_worker(settings, log)
    try:
        result = wait_for_state(
            settings, "crash", {RequestState.SUCCEEDED, RequestState.FAILED}, 180
        )
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0, log.read_text()

    assert result.state is RequestState.SUCCEEDED, result.error
    assert len(parent_runs(mlflow_client(settings.local.mlflow_uri))) == 1
    [version] = model_versions(settings, "iris-crash")
    assert str(version.version) == result.model_version == "1"
    jobs = list((settings.local.data_dir / "jobs").iterdir())
    assert [p.name for p in jobs] == [result.job_name]


def test_messages_received_during_shutdown_are_released_at_once(settings: Settings) -> None:
    """A batch taken just as the worker stops is visible again at once, not after the
    visibility timeout."""
    worker = make_worker(settings)
    queue = sqlite_queue(worker)
    queue.send(iris_body("later-1"))
    queue.send(iris_body("later-2"))
    stop = threading.Event()
    stop.set()

    assert worker.run_once(stop) == 2

    assert queue.visible_count() == 2
    assert worker.results.get("later-1") is None


def test_a_message_taken_by_another_receiver_is_let_go(settings: Settings) -> None:
    """When a slow worker's receipt has gone stale (another receiver took the message),
    settling it is skipped, not an error, and the other receiver keeps the message."""
    worker = make_worker(settings)
    queue = sqlite_queue(worker)
    worker.results.put(RequestResult(request_id="done", state=RequestState.SUCCEEDED))
    queue.send(iris_body("done"))
    [slow] = queue.receive(1, 0.1)
    time.sleep(0.3)
    [fast] = queue.receive(1, 30)

    worker.handle(slow)

    assert queue.visible_count() == 0  # still held by the other receiver, not deleted
    queue.delete(fast)
    assert worker.stats.counters["received"] == 1


def test_the_loop_outlives_a_fault_of_its_own(settings: Settings) -> None:
    """An unexpected error while receiving is logged and the long-running loop goes on;
    a drain run logs it and exits 1."""
    worker = make_worker(settings)
    calls = 0

    def broken_receive(max_messages: int, visibility_timeout: float) -> list[Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("a fault of ours")
        stop.set()
        return []

    stop = threading.Event()
    worker.queue.receive = broken_receive  # type: ignore[method-assign]
    assert worker.run(stop) == 0
    assert calls == 2 and worker.stats.counters["errors"] == 1
    calls = 0
    assert worker.run(threading.Event(), drain=True) == EXIT_FAILED
    assert calls == 1 and worker.stats.counters["errors"] == 2
