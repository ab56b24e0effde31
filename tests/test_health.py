"""The health server over real HTTP on loopback: liveness, readiness, metrics, results."""

from __future__ import annotations

import json
import math
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures_worker import FakeClock
from structlog.testing import capture_logs

from automl_service.health import HEALTHZ_PATH, METRICS_PATH, READYZ_PATH, HealthServer
from automl_service.health_probe import check_health
from automl_service.http_thread import local_url
from automl_service.queues.sqlite import SqliteQueue
from automl_service.readiness import run_checks
from automl_service.redact import secret_values
from automl_service.result_store import SqliteResultStore
from automl_service.results import LeaderboardRow, RequestResult, RequestState
from automl_service.settings import load_settings
from automl_service.stats import WorkerStats

pytest_plugins = ["fixtures_health"]

StartHealth = Callable[..., HealthServer]


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: str


def http_get(url: str, timeout: float = 10.0) -> Answer:
    """GET ``url`` without any proxy from the environment; error statuses are answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return Answer(
                response.status,
                response.headers.get("Content-Type", ""),
                response.read().decode(),
            )
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.headers.get("Content-Type", ""), exc.read().decode())


# A small Prometheus text-format parser -------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse_prometheus(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples by (name, labels); asserts the exposition format's rules as it goes."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helps: set[str] = set()
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert re.fullmatch(_NAME, name), line
            assert name not in helps, f"second HELP for {name}"
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "summary", "histogram", "untyped"), line
            assert name not in types, f"second TYPE for {name}"
            types[name] = kind
            continue
        assert line and not line.startswith("#"), f"unexpected line {line!r}"
        match = _SAMPLE.match(line)
        assert match, f"not a sample: {line!r}"
        name, raw_labels, raw_value = match.groups()
        labels: list[tuple[str, str]] = []
        if raw_labels:
            consumed = 0
            for label in _LABEL.finditer(raw_labels):
                assert label.start() == consumed, f"bad labels in {line!r}"
                labels.append((label.group(1), label.group(2)))
                consumed = label.end()
            assert consumed == len(raw_labels), f"bad labels in {line!r}"
        value = float(raw_value.replace("+Inf", "inf").replace("-Inf", "-inf"))
        family = re.sub(r"_(count|sum|bucket)$", "", name)
        declared = types.get(name) or types.get(family)
        assert declared, f"sample {name} has no TYPE line before it"
        if declared == "counter":
            assert name.endswith("_total") and value >= 0 and not math.isnan(value)
        if declared == "summary":
            assert name != family, "summary samples are _count/_sum (no quantiles here)"
        key = (name, tuple(sorted(labels)))
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = value
    return samples


# /healthz ------------------------------------------------------------------------------


def test_healthz_follows_the_heartbeat(start_health: StartHealth) -> None:
    """/healthz answers 200 while the heartbeat is fresh, 503 once stale, 200 after a beat."""
    clock = FakeClock()
    stats = WorkerStats(clock=clock)
    server = start_health(stats, stale_after=0.5)
    fresh = http_get(server.url + HEALTHZ_PATH)
    assert fresh.status == 200
    assert json.loads(fresh.body)["status"] == "ok"
    clock.now += 0.7
    stale = http_get(server.url + HEALTHZ_PATH)
    assert stale.status == 503
    assert json.loads(stale.body)["heartbeat_age_seconds"] >= 0.5
    stats.beat()
    assert http_get(server.url + HEALTHZ_PATH).status == 200


def test_healthz_answers_while_readiness_blocks(start_health: StartHealth) -> None:
    """A readiness check that hangs does not hold up /healthz (requests are threaded)."""
    release = threading.Event()

    def slow() -> dict[str, str | None]:
        release.wait(10)
        return {"queue": None}

    server = start_health(readiness=slow)
    answers: list[int] = []
    waiting = threading.Thread(
        target=lambda: answers.append(http_get(server.url + "/readyz").status)
    )
    waiting.start()
    try:
        started = time.monotonic()
        assert http_get(server.url + HEALTHZ_PATH, timeout=5).status == 200
        assert time.monotonic() - started < 3
        assert answers == []
    finally:
        release.set()
        waiting.join(10)
    assert answers == [200]


# /readyz -------------------------------------------------------------------------------


def test_readyz_follows_a_real_sqlite_queue(tmp_path: Path, start_health: StartHealth) -> None:
    """/readyz turns 503 when the queue's file is moved away and 200 when it is back."""
    path = tmp_path / "queue.db"
    queue = SqliteQueue(path, "requests")
    queue.send('{"hello": 1}')
    server = start_health(readiness=lambda: run_checks({"queue": queue.check}))

    ready = http_get(server.url + READYZ_PATH)
    assert ready.status == 200
    assert json.loads(ready.body) == {"status": "ready", "checks": {"queue": "ok"}}

    aside = tmp_path / "aside.db"
    path.rename(aside)
    gone = http_get(server.url + READYZ_PATH)
    assert gone.status == 503
    body = json.loads(gone.body)
    assert body["status"] == "not ready"
    assert "queue_messages" in body["checks"]["queue"]

    for leftover in tmp_path.glob("queue.db*"):
        leftover.unlink()
    aside.rename(path)
    back = http_get(server.url + READYZ_PATH)
    assert back.status == 200
    assert queue.visible_count() == 1


def test_readyz_times_out_and_shares_one_call(start_health: StartHealth) -> None:
    """A hung readiness check answers 503 after the timeout, once for all concurrent probes."""
    release = threading.Event()
    calls: list[float] = []

    def hung() -> dict[str, str | None]:
        calls.append(time.monotonic())
        release.wait(10)
        return {"queue": None}

    server = start_health(readiness=hung, readiness_timeout=0.5)
    statuses: list[int] = []

    def ask() -> None:
        statuses.append(http_get(server.url + READYZ_PATH).status)

    probes = [threading.Thread(target=ask) for _ in range(4)]
    try:
        for probe in probes:
            probe.start()
        for probe in probes:
            probe.join(10)
        assert statuses == [503] * 4
        assert len(calls) == 1
        slow = http_get(server.url + READYZ_PATH)
        assert "longer than 0.5 s" in slow.body
        assert len(calls) == 1
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while http_get(server.url + READYZ_PATH).status != 200:
        assert time.monotonic() < deadline, "readiness never recovered"
        time.sleep(0.05)
    assert len(calls) <= 2  # the hung call's own answer, or one fresh call after it


def test_readyz_is_503_when_any_check_fails(start_health: StartHealth) -> None:
    """One failing check out of several makes /readyz 503 and names only that check."""
    server = start_health(readiness=lambda: {"queue": None, "backend": "engine unreachable"})
    answer = http_get(server.url + READYZ_PATH)
    assert answer.status == 503
    assert json.loads(answer.body)["checks"] == {"queue": "ok", "backend": "engine unreachable"}


def test_readyz_is_503_when_readiness_itself_raises(start_health: StartHealth) -> None:
    """A readiness function that raises is an answer (503), not a dropped connection."""

    def broken() -> dict[str, str | None]:
        raise RuntimeError("no backend built")

    answer = http_get(start_health(readiness=broken).url + READYZ_PATH)
    assert answer.status == 503
    assert "no backend built" in json.loads(answer.body)["checks"]["readiness"]


# /metrics ------------------------------------------------------------------------------


def test_metrics_parse_and_reflect_the_stats(
    start_health: StartHealth, result_store: SqliteResultStore
) -> None:
    """/metrics is valid Prometheus text whose samples equal the worker's counters, step
    durations included as a histogram."""
    stats = WorkerStats()
    stats.count("received", 5)
    stats.count("succeeded", 2)
    stats.count("failed")
    stats.count("rechecked", 3)
    stats.count("errors", 4)
    stats.track("req-a", True)
    stats.time_step("submit", 0.25)
    stats.time_step("submit", 0.5)
    stats.time_step("register", 1.5)
    result_store.put(RequestResult(request_id="training-1", state=RequestState.TRAINING))
    result_store.put(RequestResult(request_id="training-2", state=RequestState.TRAINING))
    result_store.put(RequestResult(request_id="done-1", state=RequestState.SUCCEEDED))

    answer = http_get(start_health(stats).url + METRICS_PATH)
    assert answer.status == 200
    assert answer.content_type.startswith("text/plain; version=0.0.4")
    samples = parse_prometheus(answer.body)

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("automl_service_requests_received_total") == 5
    assert value("automl_service_requests_succeeded_total") == 2
    assert value("automl_service_requests_failed_total") == 1
    assert value("automl_service_requests_poisoned_total") == 0
    assert value("automl_service_requests_rechecked_total") == 3
    assert value("automl_service_worker_events_total", event="errors") == 4
    assert value("automl_service_requests_in_progress") == 1
    assert value("automl_service_automl_jobs_running") == 2
    assert value("automl_service_requests", state="training") == 2
    assert value("automl_service_requests", state="succeeded") == 1
    assert value("automl_service_requests", state="failed") == 0
    assert value("automl_service_step_duration_seconds_count", step="submit") == 2
    assert value("automl_service_step_duration_seconds_sum", step="submit") == 0.75
    assert value("automl_service_step_duration_seconds_count", step="register") == 1
    assert value("automl_service_step_duration_seconds_bucket", step="submit", le="0.25") == 1
    assert value("automl_service_step_duration_seconds_bucket", step="submit", le="0.5") == 2
    assert value("automl_service_step_duration_seconds_bucket", step="submit", le="+Inf") == 2
    assert value("automl_service_step_duration_seconds_bucket", step="register", le="1.0") == 0
    assert 0 <= value("automl_service_heartbeat_age_seconds") < 60


def test_metrics_escape_label_values(start_health: StartHealth) -> None:
    """Step names with quotes, backslashes and newlines still give parseable labels."""
    stats = WorkerStats()
    stats.time_step('odd "step"\\\nname', 1.0)
    samples = parse_prometheus(http_get(start_health(stats).url + METRICS_PATH).body)
    labels = (("step", 'odd \\"step\\"\\\\\\nname'),)
    assert samples[("automl_service_step_duration_seconds_count", labels)] == 1


# /requests/{id} ------------------------------------------------------------------------


def test_request_status_returns_the_stored_result(
    start_health: StartHealth, result_store: SqliteResultStore
) -> None:
    """/requests/{id} returns the stored RequestResult as JSON, 404 for an unknown id."""
    stored = RequestResult(
        request_id="req-42",
        state=RequestState.SUCCEEDED,
        metric="accuracy",
        best_run_id="run-1",
        best_value=0.93,
        leaderboard=[LeaderboardRow(run_id="run-1", algorithm="lgbm", value=0.93)],
        model_name="churn",
        model_version="3",
    )
    result_store.put(stored)
    server = start_health()
    answer = http_get(server.url + "/requests/req-42")
    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert RequestResult.model_validate_json(answer.body) == stored
    assert http_get(server.url + "/requests/req-43").status == 404
    assert http_get(server.url + "/requests/req-42/extra").status == 404
    assert http_get(server.url + "/requests/").status == 404
    assert http_get(server.url + "/nothing-here").status == 404


# Secrets -------------------------------------------------------------------------------

CANARY_KEY = "Q0FOQVJZa2V5LXNob3VsZC1uZXZlci1sZWFr"  # base64, like a real account key
CANARY_PASSWORD = "canary-pw-7f3a"
CANARY_TOKEN = "canary-token-91bd"
CANARY_SIG = "canary%2Bsig%3D"


def test_no_answer_carries_a_secret(
    monkeypatch: pytest.MonkeyPatch,
    start_health: StartHealth,
    result_store: SqliteResultStore,
) -> None:
    """Secrets from settings, echoed in readiness errors and results, appear in no answer."""
    connection_string = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={CANARY_KEY};QueueEndpoint=http://127.0.0.1:1/devstoreaccount1"
    )
    monkeypatch.setenv("AUTOML_SERVICE_QUEUE__CONNECTION_STRING", connection_string)
    settings = load_settings()
    assert settings.queue.connection_string is not None
    secret = settings.queue.connection_string.get_secret_value()

    def failing_queue() -> None:
        raise ConnectionError(f"cannot reach queue with {secret}")

    def failing_tracking() -> None:
        raise ConnectionError(
            f"GET https://admin:{CANARY_PASSWORD}@tracking.example/api failed; "
            f"Authorization: Bearer {CANARY_TOKEN}; "
            f"https://acct.queue.core.windows.net/q?sv=2024-01-01&sig={CANARY_SIG}&se=2030"
        )

    result_store.put(
        RequestResult(
            request_id="req-secret",
            state=RequestState.FAILED,
            error=f"queue said: {secret}; sent Bearer {CANARY_TOKEN}",
        )
    )
    stats = WorkerStats()
    stats.time_step(f"Password={CANARY_PASSWORD}", 1.0)
    readiness = lambda: run_checks({"queue": failing_queue, "tracking": failing_tracking})  # noqa: E731
    canaries = (CANARY_KEY, CANARY_PASSWORD, CANARY_TOKEN, CANARY_SIG)
    for secrets in ((), secret_values(settings)):
        server = start_health(stats, readiness, secrets=secrets)
        with capture_logs() as logged:
            bodies = {
                path: http_get(server.url + path).body
                for path in (HEALTHZ_PATH, READYZ_PATH, METRICS_PATH, "/requests/req-secret")
            }
        assert any(event["event"] == "health.not_ready" for event in logged)
        bodies["logs"] = repr(logged)
        assert "devstoreaccount1" in bodies[READYZ_PATH] or secrets  # the error still says where
        for path, body in bodies.items():
            for canary in canaries:
                assert canary not in body, f"{canary} leaked through {path}"


def test_literal_secrets_are_redacted_even_without_a_pattern(start_health: StartHealth) -> None:
    """A secret value from settings is redacted wherever it appears, in any form of text."""
    monkey = "plain-words-secret-0042"
    server = start_health(
        readiness=lambda: {"queue": f"failed with {monkey} in the message"}, secrets=[monkey]
    )
    body = http_get(server.url + READYZ_PATH).body
    assert monkey not in body
    assert "failed with *** in the message" in body


# check_health --------------------------------------------------------------------------


def test_check_health_exit_codes(start_health: StartHealth) -> None:
    """check_health is 0 against a live fresh worker, 1 when stale, 1 when nothing listens."""
    stats = WorkerStats()
    server = start_health(stats, stale_after=30)
    assert check_health(server.url, timeout=5) == 0
    assert check_health(server.url + HEALTHZ_PATH, timeout=5) == 0
    assert check_health(server.url + "/requests/missing", timeout=5) == 1
    stats.heartbeat_at -= 60
    assert check_health(server.url, timeout=5) == 1
    url = server.url
    server.stop()
    started = time.monotonic()
    assert check_health(url, timeout=2) == 1
    assert time.monotonic() - started < 5
    assert check_health("not a url", timeout=1) == 1


def test_cli_health_command_uses_check_health(
    start_health: StartHealth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`automl-service health` exits 0 against a live server and 1 against a dead one."""
    cli = pytest.importorskip("automl_service.cli")
    monkeypatch.setenv("AUTOML_SERVICE_LOCAL__DATA_DIR", str(tmp_path))
    server = start_health()
    assert cli.main(["health", "--url", server.url, "--timeout", "5"]) == 0
    url = server.url
    server.stop()
    assert cli.main(["health", "--url", url, "--timeout", "2"]) == 1


def test_server_lifecycle() -> None:
    """start binds a free port for port 0, a wildcard host maps to loopback, stop is idempotent."""
    server = HealthServer(WorkerStats(), lambda: {}, _NoResults(), "0.0.0.0", 0)
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        assert not server.url.endswith(":0")
        assert http_get(server.url + HEALTHZ_PATH).status == 200
    server.stop()
    assert local_url("0.0.0.0", 8080, HEALTHZ_PATH) == "http://127.0.0.1:8080/healthz"


class _NoResults:
    """An empty result store (the protocol's methods, no storage)."""

    def put(self, result: RequestResult) -> None:
        raise AssertionError("the health server never writes results")

    def get(self, request_id: str) -> RequestResult | None:
        return None

    def recent(self, limit: int = 20) -> list[RequestResult]:
        return []

    def counts(self) -> dict[RequestState, int]:
        return {}
