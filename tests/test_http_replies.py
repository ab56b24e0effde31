"""What the health and scoring servers send on the wire: status lines, headers and bodies,
for answers, client mistakes and answers that fail."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from automl_service.engines.local.endpoint_store import EndpointRecord, EndpointStore
from automl_service.engines.local.serving import MAX_BODY_BYTES, ScoringServer
from automl_service.errors import TransientError
from automl_service.health import HealthServer
from automl_service.http_json import Reply
from automl_service.results import RequestResult, RequestState
from automl_service.stats import WorkerStats

SECRET = "s3cr3t-value"


@dataclass(frozen=True)
class Wire:
    """One reply as read off the socket."""

    version: int  # 10 or 11, as http.client reports it
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(url: str, method: str, path: str, body: bytes | None = None) -> Wire:
    """One request on a fresh connection; error statuses are replies too."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return Wire(
            response.version,
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        conn.close()


def raw_exchange(url: str, request: bytes) -> bytes:
    """Send ``request`` as it is and read until the server closes the connection."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def assert_json_reply(wire: Wire, status: int, body: object) -> None:
    """A JSON reply with the headers every JSON reply carries."""
    assert wire.status == status
    assert wire.headers["content-type"] == "application/json"
    assert wire.headers["content-length"] == str(len(wire.body))
    assert wire.headers["cache-control"] == "no-store"
    assert wire.body == json.dumps(body, sort_keys=True).encode()


# The health server -----------------------------------------------------------------------


class _Results:
    """A result store whose reads fail with a secret in the message, or raise in counts."""

    def put(self, result: RequestResult) -> None:
        raise AssertionError("never written")

    def get(self, request_id: str) -> RequestResult | None:
        if request_id == "broken":
            raise OSError(f"disk gone ({SECRET})")
        return None

    def recent(self, limit: int = 20) -> list[RequestResult]:
        return []

    def counts(self) -> dict[RequestState, int]:
        return {}


class _BrokenHealth(HealthServer):
    def healthz(self) -> Reply:
        raise RuntimeError(f"broken ({SECRET})")


@pytest.fixture
def health() -> Iterator[HealthServer]:
    server = HealthServer(
        WorkerStats(), lambda: {"queue": None}, _Results(), "127.0.0.1", 0, secrets=[SECRET]
    )
    with server:
        yield server


def test_health_replies(health: HealthServer) -> None:
    """HTTP/1.0 JSON replies with the service's Server header; metrics as Prometheus text;
    unknown paths and unknown requests 404; a failing store 503 without its secret."""
    ok = exchange(health.url, "GET", "/healthz")
    assert ok.version == 10
    assert ok.headers["server"].strip() == "automl-service-health"
    age = ok.json()["heartbeat_age_seconds"]
    assert_json_reply(
        ok, 200, {"status": "ok", "heartbeat_age_seconds": age, "stale_after_seconds": 120.0}
    )
    assert_json_reply(
        exchange(health.url, "GET", "/readyz"), 200, {"status": "ready", "checks": {"queue": "ok"}}
    )
    metrics = exchange(health.url, "GET", "/metrics")
    assert metrics.status == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert metrics.headers["content-length"] == str(len(metrics.body))
    assert metrics.headers["cache-control"] == "no-store"
    assert_json_reply(exchange(health.url, "GET", "/nowhere"), 404, {"error": "not found"})
    assert_json_reply(
        exchange(health.url, "GET", "/requests/unknown"), 404, {"error": "no such request"}
    )
    assert_json_reply(
        exchange(health.url, "GET", "/requests/broken"),
        503,
        {"error": "result store unavailable"},
    )


def test_health_answers_only_get(health: HealthServer) -> None:
    """Other methods get the standard library's 501."""
    assert exchange(health.url, "POST", "/healthz", b"{}").status == 501


def test_a_failing_health_answer_is_a_500_without_details() -> None:
    server = _BrokenHealth(WorkerStats(), lambda: {}, _Results(), "127.0.0.1", 0)
    with server:
        wire = exchange(server.url, "GET", "/healthz")
    assert_json_reply(wire, 500, {"error": "internal error"})


# The scoring server ----------------------------------------------------------------------


class _BusyStore(EndpointStore):
    """Endpoint records that stay locked."""

    def get(self, name: str) -> EndpointRecord | None:
        raise TransientError(f"database is locked ({SECRET})")


class _BrokenStore(EndpointStore):
    """Endpoint records that fail in an unexpected way."""

    def endpoints(self) -> list[EndpointRecord]:
        raise RuntimeError(f"unexpected ({SECRET})")


def scoring(store: EndpointStore) -> ScoringServer:
    return ScoringServer(store, "sqlite:///unused.db", secrets=[SECRET])


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[ScoringServer]:
    with scoring(EndpointStore(tmp_path / "endpoints.db")) as server:
        yield server


def test_scoring_replies(serving: ScoringServer) -> None:
    """HTTP/1.1 JSON replies with the service's Server header; score only with POST."""
    ok = exchange(serving.url, "GET", "/healthz")
    assert ok.version == 11
    assert ok.headers["server"].strip() == "automl-service-scoring"
    assert "allow" not in ok.headers
    assert_json_reply(ok, 200, {"status": "ok"})
    assert_json_reply(exchange(serving.url, "GET", "/endpoints"), 200, {"endpoints": []})
    assert_json_reply(
        exchange(serving.url, "GET", "/endpoints/nope"), 404, {"error": "no endpoint named 'nope'"}
    )
    not_allowed = exchange(serving.url, "GET", "/endpoints/nope/score")
    assert_json_reply(not_allowed, 405, {"error": "score with POST"})
    assert not_allowed.headers["allow"] == "POST"
    assert_json_reply(
        exchange(serving.url, "POST", "/endpoints/nope/score", b"{}"),
        404,
        {"error": "no endpoint named 'nope'"},
    )
    assert_json_reply(
        exchange(serving.url, "POST", "/elsewhere", b"{}"), 404, {"error": "not found"}
    )


def test_scoring_refuses_bad_lengths_and_closes(serving: ScoringServer) -> None:
    """A bad Content-Length is a 400 and a body over the limit a 413, unread; the
    connection is closed after either."""
    for length, status, error in (
        ("-5", 400, "bad Content-Length"),
        ("many", 400, "bad Content-Length"),
        (str(MAX_BODY_BYTES + 1), 413, f"body is over {MAX_BODY_BYTES} bytes"),
    ):
        raw = raw_exchange(
            serving.url,
            b"POST /endpoints/e/score HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + length.encode()
            + b"\r\n\r\n",
        )
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0].startswith(f"HTTP/1.1 {status} "), lines[0]
        headers = dict(line.split(": ", 1) for line in lines[1:])
        assert headers["Content-Type"] == "application/json"
        assert headers["Content-Length"] == str(len(body))
        assert headers["Cache-Control"] == "no-store"
        assert json.loads(body) == {"error": error}


def test_scoring_failures_are_503_or_500_without_details(tmp_path: Path) -> None:
    """Busy records answer 503, anything unexpected 500; neither says more."""
    with scoring(_BusyStore(tmp_path / "busy.db")) as busy:
        assert_json_reply(
            exchange(busy.url, "GET", "/endpoints/e"),
            503,
            {"error": "endpoint records unavailable"},
        )
    with scoring(_BrokenStore(tmp_path / "broken.db")) as broken:
        assert_json_reply(
            exchange(broken.url, "GET", "/endpoints"), 500, {"error": "internal error"}
        )


def test_replies_are_not_held_back_by_nagles_algorithm(
    health: HealthServer, serving: ScoringServer
) -> None:
    """Both servers answer with TCP_NODELAY: headers and body leave as two writes, and on
    a kept-alive connection the second would otherwise wait for the client's delayed ACK
    (40 ms a request, measured by benchmarks/serving_speed.py)."""
    for server in (health, serving):
        assert server.handler_class().disable_nagle_algorithm is True
