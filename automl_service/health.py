"""The worker's HTTP face: liveness, readiness, Prometheus metrics and request status.

``HealthServer`` serves from a daemon thread (standard library ``ThreadingHTTPServer``), so
it answers while the worker loop is busy. Every answer is built from the worker's stats,
the readiness checks and the result store; every text that could carry a secret (an error
from a queue client that echoes its connection string, a result's error) passes through
``scrub`` first. The readiness checks run through ``readiness.SharedCall``; the client
side, for a container HEALTHCHECK, is ``health_probe.check_health``.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from .http_json import Reply, json_reply, reply_handler
from .http_thread import BackgroundHTTPServer
from .logs import get_logger
from .prometheus import CONTENT_TYPE, render_metrics
from .readiness import Readiness, SharedCall
from .redact import scrub, scrub_value
from .results import RequestState, ResultReader
from .stats import WorkerStats

log = get_logger(__name__)

HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
METRICS_PATH = "/metrics"
REQUESTS_PATH = "/requests/"

#: A heartbeat older than this (seconds) makes ``/healthz`` answer 503.
DEFAULT_STALE_AFTER = 120.0

#: Readiness checks slower than this (seconds) count as failed.
DEFAULT_READINESS_TIMEOUT = 8.0

# The server ------------------------------------------------------------------------------


class HealthServer(BackgroundHTTPServer):
    """Serves ``/healthz``, ``/readyz``, ``/metrics`` and ``/requests/{id}``.

    - ``/healthz``: 200 while ``stats.heartbeat_age()`` is below ``stale_after`` seconds,
      else 503. Never calls out: it answers even when every backend is down.
    - ``/readyz``: calls ``readiness()``; 200 when every check maps to None, else 503.
      Error texts are scrubbed of secrets. One call at a time: concurrent probes share the
      call under way, and one that takes longer than ``readiness_timeout`` answers 503
      while it goes on (a hung backend never piles up threads).
    - ``/metrics``: Prometheus text (``prometheus.render_metrics``) from
      ``stats.snapshot()``, plus requests by state from ``results.counts()``.
    - ``/requests/{id}``: the RequestResult JSON from ``results``, 404 when unknown.

    ``start`` returns once the socket listens (port 0 picks a free port; see ``url``);
    ``stop`` is idempotent and waits for the serving thread.
    """

    def __init__(
        self,
        stats: WorkerStats,
        readiness: Readiness,
        results: ResultReader,
        host: str,
        port: int,
        *,
        stale_after: float = DEFAULT_STALE_AFTER,
        readiness_timeout: float = DEFAULT_READINESS_TIMEOUT,
        secrets: Iterable[str] = (),
    ) -> None:
        super().__init__(host, port)
        self.stats = stats
        self.results = results
        self.stale_after = stale_after
        self.secrets = tuple(s for s in secrets if s)
        self._readiness_calls = SharedCall(readiness, readiness_timeout)

    thread_name = "health-server"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return reply_handler(
            server_version="automl-service-health",
            log=log,
            log_event="health.http",
            timeout=10.0,  # seconds a client may take to send its request
            get=self.answer,
            on_error=self.answer_failed,
        )

    # Answers; pure apart from the calls they name.

    def healthz(self) -> Reply:
        age = self.stats.heartbeat_age()
        alive = age < self.stale_after
        body = {
            "status": "ok" if alive else "stale",
            "heartbeat_age_seconds": round(age, 3),
            "stale_after_seconds": self.stale_after,
        }
        return json_reply(HTTPStatus.OK if alive else HTTPStatus.SERVICE_UNAVAILABLE, body)

    def readyz(self) -> Reply:
        checks = self._readiness_calls.checks()
        ready = all(error is None for error in checks.values())
        body = {
            "status": "ready" if ready else "not ready",
            "checks": {
                scrub(name, self.secrets): "ok" if error is None else scrub(error, self.secrets)
                for name, error in checks.items()
            },
        }
        if not ready:
            log.warning("health.not_ready", checks=body["checks"])
        return json_reply(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE, body)

    def metrics(self) -> Reply:
        text = render_metrics(
            self.stats.snapshot(), self.stats.heartbeat_age(), self._request_states()
        )
        return Reply(HTTPStatus.OK, scrub(text, self.secrets).encode(), CONTENT_TYPE)

    def request_status(self, request_id: str) -> Reply:
        try:
            result = self.results.get(request_id)
        except Exception as exc:
            log.warning("health.result_store_error", error=scrub(str(exc), self.secrets))
            return json_reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "result store unavailable"})
        if result is None:
            return json_reply(HTTPStatus.NOT_FOUND, {"error": "no such request"})
        return json_reply(HTTPStatus.OK, scrub_value(result.model_dump(mode="json"), self.secrets))

    def _request_states(self) -> dict[RequestState, int] | None:
        try:
            return {RequestState(state): int(n) for state, n in self.results.counts().items()}
        except Exception as exc:  # metrics still answer without these gauges
            log.warning("health.result_store_error", error=scrub(str(exc), self.secrets))
            return None

    def answer(self, path: str) -> Reply:
        """The answer to ``GET path``."""
        path = urlsplit(path).path
        if path == HEALTHZ_PATH:
            return self.healthz()
        if path == READYZ_PATH:
            return self.readyz()
        if path == METRICS_PATH:
            return self.metrics()
        if path.startswith(REQUESTS_PATH):
            request_id = unquote(path[len(REQUESTS_PATH) :])
            if request_id and "/" not in request_id:
                return self.request_status(request_id)
        return json_reply(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def answer_failed(self, exc: Exception) -> Reply:
        """The answer when building one raised ``exc``: logged, scrubbed, and a bare 500."""
        log.error("health.answer_failed", error=scrub(str(exc), self.secrets))
        return json_reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})
