"""How the worker settles messages, against a real SQLite queue and result store with a
scripted engine: fast, no training. The engine stands in for the backend on purpose; the
end-to-end tests in test_worker.py drive the real one."""

from __future__ import annotations

import functools
import itertools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from automl_service.engines.base import Backend, JobState, JobStatus
from automl_service.errors import ConfigurationError, PermanentError, TransientError
from automl_service.exit_codes import EXIT_OK, EXIT_USAGE
from automl_service.metrics import Goal, Task
from automl_service.policy import enforce
from automl_service.queues.sqlite import SqliteQueue
from automl_service.request import AutoMLRequest
from automl_service.result_store import SqliteResultStore
from automl_service.results import RequestState
from automl_service.runs import ModelVersion, RunRecord, RunStatus
from automl_service.selection import Selection
from automl_service.settings import PolicySettings, WorkerSettings
from automl_service.worker import Worker

Step = Callable[[AutoMLRequest], JobStatus]


class ScriptedEngine:
    """An engine whose ``ensure_job`` runs the next scripted step for each request."""

    name = "scripted"

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.calls: list[str] = []
        self.canceled: list[tuple[str, str]] = []

    def ensure_job(self, request: AutoMLRequest) -> JobStatus:
        self.calls.append(request.id)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        return step(request)

    def job_status(self, job_name: str) -> JobStatus | None:
        return None

    def child_runs(self, job_name: str) -> list[RunRecord]:
        return [RunRecord(run_id="run-1", status=RunStatus.FINISHED, metrics={"accuracy": 0.9})]

    def cancel_job(self, job_name: str, reason: str) -> None:
        self.canceled.append((job_name, reason))

    def check(self) -> None:
        return None


class Registry:
    def register(self, request: AutoMLRequest, selection: Selection) -> ModelVersion:
        return ModelVersion(name=request.model_name, version="1", run_id=selection.winner.run_id)

    def find(self, request: AutoMLRequest) -> ModelVersion | None:
        return None


class FlakySink:
    """A reply queue that refuses the first ``failures`` outcomes."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.published: list[dict[str, object]] = []

    def publish(self, queue_name: str | None, body: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError("reply queue unavailable")
        self.published.append(json.loads(body))


def completed(request: AutoMLRequest) -> JobStatus:
    return JobStatus(request.job_name, JobState.COMPLETED, parent_run_id="parent")


def raises(exc: Exception) -> Step:
    def step(request: AutoMLRequest) -> JobStatus:
        raise exc

    return step


def request_body(request_id: str) -> str:
    return json.dumps(
        {
            "request_id": request_id,
            "task": "classification",
            "training_data": "sample:iris",
            "target_column_name": "target",
        }
    )


def make(
    tmp_path: Path,
    engine: ScriptedEngine,
    sink: FlakySink | None = None,
    max_failures: int = 3,
    policy: PolicySettings | None = None,
) -> tuple[Worker, SqliteQueue]:
    queue = SqliteQueue(tmp_path / "queue.db", "requests")
    settings = WorkerSettings(
        retry_seconds=0.01,
        max_retry_seconds=0.01,
        recheck_seconds=0.01,
        max_recheck_seconds=0.01,
        max_failures=max_failures,
    )
    worker = Worker(
        queue,
        Backend(engine=engine, registry=Registry()),
        SqliteResultStore(tmp_path / "results.db"),
        settings,
        sink=sink,
        policy=None if policy is None else functools.partial(enforce, policy=policy),
    )
    return worker, queue


def drain(worker: Worker, queue: SqliteQueue) -> int:
    """Run until nothing is left (hidden messages included) or the worker stops."""
    code = EXIT_OK
    for _ in range(50):
        code = worker.run(threading.Event(), drain=True)
        if code != EXIT_OK or (queue.visible_count() == 0 and _remaining(queue) == 0):
            return code
        threading.Event().wait(0.02)
    return code


def _remaining(queue: SqliteQueue) -> int:
    """Messages still in the queue, visible or hidden."""
    from automl_service.sqlite_db import transaction

    with transaction(queue.path) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM queue_messages WHERE queue = ?", (queue.name,)
        ).fetchone()
    return int(row[0])


HOSTILE = [
    '{"a":' * 5000,
    "1" * 5000,
    '{"request_id": "x", "n": ' + "7" * 5000 + "}",
    '{"task": NaN}',
]


def test_hostile_bodies_are_poisoned_and_their_batch_goes_on(tmp_path: Path) -> None:
    """Bodies that break the JSON decoder land in the poison queue with a reason, in the
    same receive as a valid request, which is handled at once; drain exits 0."""
    engine = ScriptedEngine(completed)
    worker, queue = make(tmp_path, engine)
    for body in HOSTILE[:2]:
        queue.send(body)
    queue.send(request_body("good"))
    for body in HOSTILE[2:]:
        queue.send(body)

    handled = worker.run_once()

    assert handled == 4  # the batch size
    result = worker.results.get("good")
    assert result is not None and result.state is RequestState.SUCCEEDED
    assert result.task is Task.CLASSIFICATION and result.goal is Goal.MAXIMIZE
    assert drain(worker, queue) == EXIT_OK
    reasons = {entry.body[:10]: entry.reason for entry in queue.poisoned()}
    assert len(reasons) == len(HOSTILE)
    assert all(reason for reason in reasons.values())
    assert "nests 5000 levels" in reasons['{"a":{"a":']
    assert "5000-digit number" in reasons["1111111111"]
    assert worker.stats.counters["poisoned"] == len(HOSTILE)
    assert queue.visible_count() == 0 and _remaining(queue) == 0


def test_a_bug_of_ours_is_logged_with_its_traceback_and_retried(tmp_path: Path) -> None:
    """An exception the service does not raise on purpose is logged with its traceback,
    counted as a failed attempt, and the request succeeds when it stops happening."""
    engine = ScriptedEngine(raises(KeyError("a fault of ours")), completed)
    worker, queue = make(tmp_path, engine)
    queue.send(request_body("flaky"))

    with capture_logs() as logs:
        assert drain(worker, queue) == EXIT_OK

    [bug] = [line for line in logs if line["event"] == "worker.unexpected_error"]
    assert isinstance(bug["exc_info"], KeyError)
    result = worker.results.get("flaky")
    assert result is not None and result.state is RequestState.SUCCEEDED
    assert engine.calls == ["flaky", "flaky"]


def test_a_request_that_keeps_failing_is_given_up_with_its_reason(tmp_path: Path) -> None:
    """Failed attempts up to the budget, then the request is failed and poisoned."""
    engine = ScriptedEngine(raises(TransientError("backend is down")))
    worker, queue = make(tmp_path, engine, max_failures=3)
    queue.send(request_body("doomed"))

    assert drain(worker, queue) == EXIT_OK

    result = worker.results.get("doomed")
    assert result is not None and result.state is RequestState.FAILED
    assert "gave up after 3 failed attempts" in (result.error or "")
    assert "backend is down" in (result.error or "")
    [entry] = queue.poisoned()
    assert entry.dequeue_count == 3 and "backend is down" in entry.reason
    assert len(engine.calls) == 3


def test_the_outcome_is_published_before_the_message_is_deleted(tmp_path: Path) -> None:
    """When the reply queue refuses the outcome, the message stays and the outcome is
    published on a later attempt; nothing is lost and the request is not redone."""
    engine = ScriptedEngine(completed)
    sink = FlakySink(failures=2)
    worker, queue = make(tmp_path, engine, sink=sink)
    queue.send(request_body("reply"))

    worker.run_once()
    assert sink.published == []
    assert _remaining(queue) == 1  # kept, not deleted

    assert drain(worker, queue) == EXIT_OK
    assert [body["request_id"] for body in sink.published] == ["reply"]
    assert sink.published[0]["state"] == "succeeded"
    assert engine.calls == ["reply"]  # a succeeded request is answered from its result


def test_an_outcome_that_can_never_be_published_goes_to_poison(tmp_path: Path) -> None:
    """A reply queue that stays down moves the message to the poison queue in the end,
    saying why, with the outcome kept in the result store."""
    sink = FlakySink(failures=100)
    worker, queue = make(tmp_path, ScriptedEngine(completed), sink=sink, max_failures=2)
    queue.send(request_body("unsent"))

    assert drain(worker, queue) == EXIT_OK

    [entry] = queue.poisoned()
    assert "could not record or publish the outcome" in entry.reason
    result = worker.results.get("unsent")
    assert result is not None and result.state is RequestState.SUCCEEDED


def test_settings_the_worker_cannot_use_stop_it_with_exit_2(tmp_path: Path) -> None:
    """A ConfigurationError stops the worker (exit 2) and releases the message untouched
    for a worker with working settings."""
    engine = ScriptedEngine(raises(ConfigurationError("workspace not found")))
    worker, queue = make(tmp_path, engine)
    queue.send(request_body("kept"))
    queue.send(request_body("next"))

    assert worker.run(threading.Event()) == EXIT_USAGE

    assert engine.calls == ["kept"]
    assert queue.visible_count() == 2
    [message] = [m for m in queue.receive(2, 30) if json.loads(m.body)["request_id"] == "kept"]
    assert message.failures == 0
    assert queue.poisoned() == []


@pytest.mark.parametrize("body", HOSTILE, ids=["deep", "digits", "digits-in-field", "nan"])
def test_a_hostile_body_never_reaches_the_loop_error_handler(tmp_path: Path, body: str) -> None:
    """Each hostile body is settled by the policy: no loop error is logged."""
    worker, queue = make(tmp_path, ScriptedEngine(completed))
    queue.send(body)
    with capture_logs() as logs:
        assert worker.run(threading.Event(), drain=True) == EXIT_OK
    assert not [line for line in logs if line["event"] == "worker.loop_error"]
    assert len(queue.poisoned()) == 1


def test_secrets_in_errors_are_scrubbed_from_the_result(tmp_path: Path) -> None:
    """A failure whose text carries a password in a URL is recorded without it."""
    error = PermanentError("store http://automl:PwCanary0x9@mlflow.internal:5000 refused")
    worker, queue = make(tmp_path, ScriptedEngine(raises(error)))
    queue.send(request_body("leaky"))

    assert drain(worker, queue) == EXIT_OK

    result = worker.results.get("leaky")
    assert result is not None and result.state is RequestState.FAILED
    assert "PwCanary0x9" not in result.model_dump_json()
    assert "http://automl:***@mlflow.internal:5000" in (result.error or "")


def test_the_policy_is_applied_again_at_receive(tmp_path: Path) -> None:
    """A message put on the queue directly, past `submit`, meets the policy too: over a
    cap it is poisoned naming the cap; with clamping it runs and its result says what
    changed."""

    def body(request_id: str) -> str:
        data = json.loads(request_body(request_id))
        return json.dumps({**data, "limits": {"timeout_seconds": 7200}})

    engine = ScriptedEngine(completed)
    worker, queue = make(tmp_path, engine, policy=PolicySettings(max_timeout_seconds=900))
    queue.send(body("over"))
    assert drain(worker, queue) == EXIT_OK
    [entry] = queue.poisoned()
    assert "policy.max_timeout_seconds" in entry.reason
    assert engine.calls == []

    clamping = PolicySettings(max_timeout_seconds=900, clamp_limits=True)
    worker, queue = make(tmp_path / "clamp", engine, policy=clamping)
    queue.send(body("clamped"))
    assert drain(worker, queue) == EXIT_OK
    result = worker.results.get("clamped")
    assert result is not None and result.state is RequestState.SUCCEEDED
    assert result.policy_changes == ["limits.timeout_seconds lowered from 7200 to 900 (policy)"]


def test_an_idle_worker_wakes_for_a_recheck_it_scheduled(tmp_path: Path) -> None:
    """A long-running worker whose only message is hidden until a job's expected end
    does not sleep through it on its idle schedule (20 s here): it checks again when the
    message is due, so the result follows the job's end within a second or so."""
    checks: list[float] = []

    def running_then_done(request: AutoMLRequest) -> JobStatus:
        checks.append(time.monotonic())
        if len(checks) < 3:
            return JobStatus(request.job_name, JobState.RUNNING, recheck_after=0.3)
        return completed(request)

    engine = ScriptedEngine(running_then_done)
    worker, queue = make(tmp_path, engine)
    worker.settings = worker.settings.model_copy(
        update={
            "poll_interval_seconds": 20.0,
            "max_poll_interval_seconds": 20.0,
            "recheck_seconds": 20.0,
            "max_recheck_seconds": 20.0,
        }
    )
    queue.send(request_body("due"))
    stop = threading.Event()
    loop = threading.Thread(target=worker.run, args=(stop,))
    loop.start()
    try:
        ends = time.monotonic() + 15
        while time.monotonic() < ends:
            result = worker.results.get("due")
            if result is not None and result.state.terminal:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(30)
    assert result is not None and result.state is RequestState.SUCCEEDED
    gaps = [later - earlier for earlier, later in itertools.pairwise(checks)]
    assert len(gaps) == 2 and all(0.25 <= gap < 5.0 for gap in gaps), gaps
