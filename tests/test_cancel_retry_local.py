"""Cancel and retry on the local backend: a real worker, trainer, MLflow store and queue,
driven through the command line in-process."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_worker import iris_request, make_worker, mlflow_client, parent_runs

from automl_service.cli import main
from automl_service.engines.local.layout import JobDir
from automl_service.engines.local.locks import is_locked
from automl_service.exit_codes import EXIT_OK
from automl_service.results import RequestState
from automl_service.settings import Settings
from automl_service.waiting import wait_for_results
from automl_service.worker import Worker

pytestmark = pytest.mark.slow


@pytest.fixture
def running(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    """A worker running in a thread on the data folder the command line uses."""
    monkeypatch.setenv("AUTOML_SERVICE_LOCAL__DATA_DIR", str(settings.local.data_dir))
    worker = make_worker(settings)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    yield worker
    stop.set()
    thread.join(timeout=30)


def submit(tmp_path: Path, body: dict[str, object]) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    assert main(["submit", str(path)]) == EXIT_OK


def until(condition: object, timeout: float = 60.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_during_training_leaves_no_trainer_and_no_model(
    tmp_path: Path, settings: Settings, running: Worker
) -> None:
    body = iris_request("cancel-me", limits={"timeout_seconds": 120, "max_trials": 10_000})
    submit(tmp_path, body)
    job = JobDir(settings.local.data_dir / "jobs" / "automl-cancel-me")
    until(lambda: (job.read_progress() or {}).get("trials", 0) >= 1)
    pid = job.spawned_pid()
    assert pid is not None and group_alive(pid)

    assert main(["cancel", "cancel-me", "--reason", "wrong data"]) == EXIT_OK
    ended = wait_for_results(running.results, ["cancel-me"], timeout=60)["cancel-me"]

    assert ended.state is RequestState.CANCELED
    assert ended.error is not None and ended.error.endswith("wrong data")
    # Killed with SIGKILL; what is left of the group is reaped within moments.
    until(lambda: not group_alive(pid), timeout=10)
    assert not is_locked(job.trainer_lock)
    client = mlflow_client(settings.local.mlflow_uri)
    (parent,) = parent_runs(client, "automl-cancel-me")
    assert parent.info.status == "KILLED"
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert children and all(c.info.status != "RUNNING" for c in children)
    assert client.search_model_versions("name = 'iris-cancel-me'") == []
    time.sleep(3)  # the worker goes on: the job is never started again
    assert job.attempts() == 1 and not is_locked(job.trainer_lock)


def test_retry_after_the_cause_is_fixed_succeeds(
    tmp_path: Path, settings: Settings, running: Worker
) -> None:
    """A request on a file that is not there yet fails; once the file is written, retry
    runs it again under the same id, reading the new file, and it succeeds."""
    from sklearn.datasets import load_iris

    csv = tmp_path / "iris.csv"
    body = iris_request("retry-me", training_data=str(csv))
    submit(tmp_path, body)
    first = wait_for_results(running.results, ["retry-me"], timeout=60)["retry-me"]
    assert first.state is RequestState.FAILED, first

    load_iris(as_frame=True).frame.to_csv(csv, index=False)
    assert main(["retry", "retry-me"]) == EXIT_OK
    until(lambda: running.results.get("retry-me").attempt == 2)  # type: ignore[union-attr]
    done = wait_for_results(running.results, ["retry-me"], timeout=120)["retry-me"]

    assert done.state is RequestState.SUCCEEDED, done.error
    assert done.attempt == 2 and done.job_name == "automl-retry-me-attempt-2"
    assert done.data_fingerprint is not None and done.model_version == "1"
    assert [a.state for a in done.earlier_attempts] == [RequestState.FAILED]
