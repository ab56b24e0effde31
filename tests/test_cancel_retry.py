"""Cancel and retry: orders and new attempts through the queue, against a real SQLite queue
and result store and the command line in-process. The engine is scripted here (no
training); test_cancel_retry_local.py drives the local trainer."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from test_worker_settle import FlakySink, Registry, ScriptedEngine, completed, raises, request_body

from automl_service.cli import main
from automl_service.engines.base import Backend, JobState, JobStatus
from automl_service.errors import PermanentError
from automl_service.exit_codes import EXIT_OK, EXIT_USAGE
from automl_service.queues.sqlite import SqliteQueue
from automl_service.render import result_summary
from automl_service.request import AutoMLRequest, parse_request
from automl_service.result_store import SqliteResultStore
from automl_service.results import RequestResult, RequestState
from automl_service.settings import WorkerSettings
from automl_service.worker import Worker


def training(request: AutoMLRequest) -> JobStatus:
    return JobStatus(request.job_name, JobState.RUNNING, parent_run_id="parent")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data folder the command line and the worker share."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("AUTOML_SERVICE_LOCAL__DATA_DIR", str(path))
    return path


def worker_on(
    data_dir: Path, engine: ScriptedEngine, sink: FlakySink | None = None, recheck: float = 0.01
) -> Worker:
    """A worker on the command line's queue and result store, the engine scripted."""
    settings = WorkerSettings(
        recheck_seconds=recheck, max_recheck_seconds=recheck, retry_seconds=0.01
    )
    return Worker(
        SqliteQueue(data_dir / "queue.db", "automl-requests"),
        Backend(engine=engine, registry=Registry()),
        SqliteResultStore(data_dir / "results.db"),
        settings,
        sink=sink,
    )


def poisoned(data_dir: Path) -> list[str]:
    """The reasons in the poison queue."""
    queue = SqliteQueue(data_dir / "queue.db", "automl-requests")
    return [entry.reason for entry in queue.poisoned(limit=10)]


def step(worker: Worker, times: int = 1) -> None:
    """Receive and handle whatever is visible, ``times`` times (hidden messages need a
    moment to come back)."""
    for _ in range(times):
        worker.run_once(threading.Event())
        threading.Event().wait(0.03)


def submit(tmp_path: Path, body: str) -> None:
    path = tmp_path / "request.json"
    path.write_text(body)
    assert main(["submit", str(path)]) == EXIT_OK


def test_cancel_stops_a_training_request_and_its_message_ends_it(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The order records the request canceled with who asked and why and stops its job;
    the request's own message then ends it (published, deleted) without touching the job
    again."""
    engine = ScriptedEngine(training)
    sink = FlakySink(0)
    worker = worker_on(data_dir, engine, sink, recheck=0.5)
    submit(tmp_path, request_body("c1"))
    step(worker)
    assert worker.results.get("c1").state is RequestState.TRAINING  # type: ignore[union-attr]

    assert main(["cancel", "c1", "--reason", "sent by mistake"]) == EXIT_OK
    assert "cancel of c1 sent" in capsys.readouterr().out
    step(worker)  # the order (the request's message is hidden until its re-check)
    assert [p["state"] for p in sink.published] == []
    threading.Event().wait(0.6)
    step(worker)  # the request's message

    result = worker.results.get("c1")
    assert result is not None and result.state is RequestState.CANCELED
    assert result.error is not None
    assert "canceled by" in result.error and result.error.endswith(": sent by mistake")
    assert [name for name, _ in engine.canceled] == ["automl-c1", "automl-c1"]
    assert engine.calls == ["c1"]  # the job was never asked for again
    assert [p["state"] for p in sink.published] == ["canceled"]
    assert worker.queue.visible_count() == 0
    assert worker.stats.counters["canceled"] == 1


def test_a_cancel_before_any_worker_saw_the_request_means_it_never_runs(
    tmp_path: Path, data_dir: Path
) -> None:
    """Order and request may come in any order: a request canceled while still on the
    queue ends canceled, its job never submitted."""
    engine = ScriptedEngine(completed)
    worker = worker_on(data_dir, engine)
    submit(tmp_path, request_body("c2"))
    assert main(["cancel", "c2"]) == EXIT_OK
    # The order is handled first here: take the request's message out of turn.
    queue = worker.queue
    messages = queue.receive(10, 30)
    order = next(m for m in messages if '"action"' in m.body)
    request = next(m for m in messages if m is not order)
    worker.handle(order)
    worker.handle(request)
    result = worker.results.get("c2")
    assert result is not None and result.state is RequestState.CANCELED
    assert engine.calls == []


def test_a_cancel_recorded_meanwhile_is_not_undone_by_a_worker_still_advancing(
    data_dir: Path,
) -> None:
    """A worker that read the request before the cancel cannot record it training or
    succeeded afterwards: the store keeps the cancel, and the outcome published is it."""
    store = SqliteResultStore(data_dir / "results.db")
    received = RequestResult(request_id="c3", state=RequestState.TRAINING, job_name="automl-c3")
    store.put(received)
    store.put(received.merged(state=RequestState.CANCELED, error="canceled by ops"))
    store.put(received.merged(state=RequestState.SUCCEEDED))  # a slower worker's write
    kept = store.get("c3")
    assert kept is not None and kept.state is RequestState.CANCELED
    retried = kept.next_attempt(2)
    store.put(retried)  # only a later attempt replaces a cancel
    now = store.get("c3")
    assert now is not None and now.state is RequestState.RECEIVED and now.attempt == 2


def test_cancel_refuses_unknown_and_ended_requests(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cancel", "nope"]) == EXIT_USAGE
    assert "no request 'nope'" in capsys.readouterr().err
    worker = worker_on(data_dir, ScriptedEngine(completed))
    submit(tmp_path, request_body("c4"))
    step(worker)
    assert worker.results.get("c4").state is RequestState.SUCCEEDED  # type: ignore[union-attr]
    assert main(["cancel", "c4"]) == EXIT_USAGE
    assert "already ended succeeded" in capsys.readouterr().err
    assert worker.queue.visible_count() == 0  # no order was sent


def test_an_order_for_an_ended_request_is_dropped_and_one_that_cannot_be_read_poisoned(
    tmp_path: Path, data_dir: Path
) -> None:
    worker = worker_on(data_dir, ScriptedEngine(completed))
    submit(tmp_path, request_body("c5"))
    step(worker)
    queue = worker.queue
    queue.send(json.dumps({"action": "cancel", "request_id": "c5"}))
    queue.send(json.dumps({"action": "delete", "request_id": "c5"}))
    step(worker)
    assert worker.results.get("c5").state is RequestState.SUCCEEDED  # type: ignore[union-attr]
    reasons = poisoned(data_dir)
    assert len(reasons) == 1 and "invalid order" in reasons[0] and "action" in reasons[0]


def test_retry_runs_a_failed_request_again_as_a_new_attempt(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The retry is the same request id, attempt 2, in a job of its own; the failed
    attempt is kept in the result's history."""
    engine = ScriptedEngine(raises(PermanentError("data file not found")), completed)
    worker = worker_on(data_dir, engine)
    submit(tmp_path, request_body("r1"))
    step(worker)
    failed = worker.results.get("r1")
    assert failed is not None and failed.state is RequestState.FAILED

    assert main(["retry", "r1"]) == EXIT_OK
    assert capsys.readouterr().out.splitlines()[-1] == "r1 (attempt 2)"
    assert worker.results.get("r1").state is RequestState.RECEIVED  # type: ignore[union-attr]
    step(worker)

    result = worker.results.get("r1")
    assert result is not None and result.state is RequestState.SUCCEEDED
    assert result.attempt == 2 and result.job_name == "automl-r1-attempt-2"
    assert [(a.attempt, a.state, a.job_name) for a in result.earlier_attempts] == [
        (1, RequestState.FAILED, "automl-r1")
    ]
    assert "data file not found" in (result.earlier_attempts[0].error or "")
    assert engine.calls == ["r1", "r1"]
    shown = result_summary(result)
    assert "attempt         2" in shown and "attempt 1       failed: " in shown


def test_retry_is_refused_for_a_request_that_did_not_fail(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = worker_on(data_dir, ScriptedEngine(completed))
    submit(tmp_path, request_body("r2"))
    step(worker)
    assert main(["retry", "r2"]) == EXIT_USAGE
    assert "only a failed or canceled request can be retried" in capsys.readouterr().err
    assert main(["retry", "unknown"]) == EXIT_USAGE


def test_the_worker_refuses_a_retry_it_cannot_honour(data_dir: Path) -> None:
    """Whoever sends the next attempt, the worker checks it: not for a request still
    running or succeeded, not with other settings; the request itself stays as it was."""
    worker = worker_on(data_dir, ScriptedEngine(completed))
    queue = worker.queue
    queue.send(request_body("r3"))
    step(worker)
    body = json.loads(request_body("r3"))
    queue.send(json.dumps({**body, "attempt": 2}))  # r3 succeeded: nothing to retry
    step(worker)
    assert "only a failed or canceled request can be retried" in poisoned(data_dir)[0]
    assert worker.results.get("r3").attempt == 1  # type: ignore[union-attr]

    failing = worker_on(data_dir, ScriptedEngine(raises(PermanentError("bad"))))
    queue.send(request_body("r4"))
    step(failing)
    other = {**json.loads(request_body("r4")), "attempt": 2, "primary_metric": "AUC_weighted"}
    queue.send(json.dumps(other))
    step(failing)
    assert any("other settings" in reason for reason in poisoned(data_dir))
    assert failing.results.get("r4").state is RequestState.FAILED  # type: ignore[union-attr]


def test_an_earlier_attempts_message_is_settled_without_touching_the_retry(
    data_dir: Path,
) -> None:
    """A message of attempt 1 that comes back after attempt 2 started is dropped."""
    engine = ScriptedEngine(raises(PermanentError("bad")), training)
    worker = worker_on(data_dir, engine)
    queue = worker.queue
    queue.send(request_body("r5"))
    step(worker)
    queue.send(json.dumps({**json.loads(request_body("r5")), "attempt": 2}))
    step(worker)
    assert worker.results.get("r5").state is RequestState.TRAINING  # type: ignore[union-attr]
    queue.send(request_body("r5"))  # attempt 1 again, e.g. redelivered by a producer
    messages = queue.receive(10, 30)
    stale = next(m for m in messages if '"attempt"' not in m.body)
    worker.handle(stale)
    result = worker.results.get("r5")
    assert result is not None and result.state is RequestState.TRAINING and result.attempt == 2
    assert engine.calls == ["r5", "r5"]


def test_the_next_attempt_keeps_settings_but_reads_the_data_afresh() -> None:
    """A retry's settings digest is its first attempt's; its job name is its own."""
    first = parse_request(request_body("r6"))
    second = first.model_copy(update={"attempt": 2})
    assert second.id == first.id and second.digest == first.digest
    assert second.settings_digest == first.settings_digest
    assert second.job_name == "automl-r6-attempt-2" != first.job_name
    unnamed = parse_request(json.dumps({k: v for k, v in json.loads(request_body("x")).items()
                                        if k != "request_id"}))  # fmt: skip
    assert unnamed.model_copy(update={"attempt": 3}).id == unnamed.id
