"""A request's identity follows its data: new data is a new request, a redelivered
message is the same one, and one id never names two different requests. Real SQLite
queue and result store, real files; the engine is scripted (no training)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from test_worker_settle import ScriptedEngine, completed, drain, make

from automl_service.engines.base import JobState, JobStatus
from automl_service.exit_codes import EXIT_OK
from automl_service.fingerprint import data_fingerprint, pinned_fingerprints, stamped
from automl_service.queues.sqlite import SqliteQueue
from automl_service.request import AutoMLRequest, parse_request
from automl_service.result_store import SqliteResultStore
from automl_service.results import RequestState
from automl_service.worker import Worker


def csv_request(path: Path, **changes: object) -> str:
    return json.dumps(
        {
            "task": "classification",
            "training_data": str(path),
            "target_column_name": "y",
            **changes,
        }
    )


def test_the_fingerprint_follows_the_content(tmp_path: Path) -> None:
    """Same bytes, same fingerprint (whatever the file's time); other bytes, another;
    samples and remote data have none."""
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,2\n")
    request = parse_request(csv_request(path))
    first = data_fingerprint(request)
    assert first is not None and first.startswith("sha256:")
    os.utime(path, (1, 1))
    assert data_fingerprint(request) == first
    path.write_text("x,y\n1,3\n")
    assert data_fingerprint(request) not in (None, first)
    for ref in ("sample:iris", "azureml://datastores/d/paths/t.csv"):
        assert (
            data_fingerprint(parse_request(csv_request(Path(ref)).replace(str(Path(ref)), ref)))
            is None
        )
    stamp = stamped(request, first)
    assert stamp.id != request.id and stamp.data_fingerprint == first
    assert stamped(stamp, "sha256:" + "0" * 32).data_fingerprint == first  # never replaced


def _worker(tmp_path: Path, engine: ScriptedEngine) -> tuple[Worker, SqliteQueue]:
    worker, queue = make(tmp_path / "store", engine)
    assert isinstance(worker.results, SqliteResultStore)
    worker.fingerprint = pinned_fingerprints(worker.results)
    return worker, queue


def _ids(worker: Worker) -> set[str]:
    return {r.request_id for r in worker.results.recent(100)}


def test_new_data_under_the_same_path_is_a_new_request(tmp_path: Path) -> None:
    """The same message sent after the file changed trains again (a new id, a new job);
    sent again with the file unchanged it is answered from its result."""
    data = tmp_path / "monthly.csv"
    data.write_text("x,y\n1,2\n")
    engine = ScriptedEngine(completed)
    worker, queue = _worker(tmp_path, engine)

    queue.send(csv_request(data))
    assert drain(worker, queue) == EXIT_OK
    data.write_text("x,y\n1,2\n3,4\n5,6\n")
    queue.send(csv_request(data))
    assert drain(worker, queue) == EXIT_OK
    queue.send(csv_request(data))
    assert drain(worker, queue) == EXIT_OK

    ids = _ids(worker)
    assert len(ids) == 2
    assert len(engine.calls) == 2 and engine.calls[0] != engine.calls[1]
    results = [worker.results.get(rid) for rid in ids]
    assert all(r is not None and r.state is RequestState.SUCCEEDED for r in results)
    assert len({r.data_fingerprint for r in results if r is not None}) == 2


def test_a_redelivered_message_stays_the_request_it_was(tmp_path: Path) -> None:
    """A message whose file changes while its job trains is still the same request when
    it comes back: its fingerprint is the one first seen."""
    data = tmp_path / "t.csv"
    data.write_text("x,y\n1,2\n")

    def running(request: AutoMLRequest) -> JobStatus:
        return JobStatus(request.job_name, JobState.RUNNING)

    engine = ScriptedEngine(running, completed)
    worker, queue = _worker(tmp_path, engine)
    queue.send(csv_request(data))
    worker.run_once(threading.Event())
    data.write_text("x,y\n9,9\n")
    assert drain(worker, queue) == EXIT_OK

    assert engine.calls[0] == engine.calls[1]
    assert len(_ids(worker)) == 1


def test_an_id_sent_again_with_other_content_is_refused(tmp_path: Path) -> None:
    """A request id re-sent with other settings is poisoned saying so; the first request
    keeps its result."""
    data = tmp_path / "t.csv"
    data.write_text("x,y\n1,2\n")
    engine = ScriptedEngine(completed)
    worker, queue = _worker(tmp_path, engine)
    queue.send(csv_request(data, request_id="monthly"))
    assert drain(worker, queue) == EXIT_OK
    queue.send(csv_request(data, request_id="monthly", limits={"timeout_seconds": 60}))
    assert drain(worker, queue) == EXIT_OK

    [entry] = queue.poisoned()
    assert "'monthly' was sent before with other settings or other data" in entry.reason
    first = worker.results.get("monthly")
    assert first is not None and first.state is RequestState.SUCCEEDED
    assert engine.calls == ["monthly"]
