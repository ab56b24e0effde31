"""The scoring server of the local online endpoints (``automl-service serve``).

``ScoringServer`` answers from a daemon thread (standard library ``ThreadingHTTPServer``):

- ``POST /endpoints/{name}/score``: the live deployment's predictions,
  ``{"predictions": [...], "deployment": "<name>"}``; a classifier's answer also has
  ``"probabilities": [{"<class>": p, ...}, ...]``, one object per row (a model registered
  before probabilities were answered has none). The body takes the Azure ML and MLflow
  scoring formats: ``{"input_data": {"columns": [...], "data": [[...]]}}``,
  ``{"dataframe_split": {"columns": [...], "data": [[...]]}}`` or
  ``{"dataframe_records": [{...}, ...]}``.
- ``GET /endpoints``: every endpoint with its live deployment; ``GET /endpoints/{name}``
  one of them.
- ``GET /healthz``: 200 while the server runs.

Every call checks whether the endpoint records changed (``endpoint_cache``), so a switch
of deployment by any process is picked up by the next call without a restart; models are
loaded once per model version and kept in a small least-recently-used cache (``served``:
a FLAML model of numbers scores the body's rows as a numpy matrix, every other model its
pyfunc ``predict`` on a table). Client mistakes get a 4xx with a JSON ``error``: 404 for an
unknown endpoint, 400 for a body that is not JSON or lacks columns or that the model
refuses (a forecaster names the timestamp outside its horizon), 413 for a body over
``MAX_BODY_BYTES``. Error texts pass through ``redact.scrub``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from ...errors import AutoMLServiceError, PermanentError, TransientError
from ...http_json import Reply, json_reply, reply_handler
from ...http_thread import BackgroundHTTPServer
from ...logs import get_logger
from ...redact import scrub
from .answers import answer_json as answer_json
from .answers import predictions_json as predictions_json
from .column_types import NotNumbers
from .endpoint_cache import CachedEndpoints
from .endpoint_decisions import scoring_uri
from .endpoint_store import EndpointRecord, EndpointStore
from .horizon import OutsideHorizon
from .model_loading import load_registered
from .scoring_body import BadInput as BadInput
from .scoring_body import missing_columns, read_scoring_body
from .scoring_body import parse_scoring_body as parse_scoring_body
from .served import Served

log = get_logger(__name__)

ENDPOINTS_PATH = "/endpoints"
HEALTHZ_PATH = "/healthz"

#: Largest scoring body accepted, in bytes.
MAX_BODY_BYTES = 16 * 1024 * 1024

Loader = Callable[[str, str], Any]


# The model cache -------------------------------------------------------------------------


class ModelCache:
    """Loaded models keyed by (model name, version), least recently used dropped beyond
    ``size``. Thread-safe; concurrent first calls for one version load it once."""

    def __init__(self, loader: Loader, size: int = 8) -> None:
        self.loader = loader
        self.size = size
        self._models: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self.loads = 0  # how many times the loader ran

    def get(self, name: str, version: str) -> Any:
        key = (name, version)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = self.loader(name, version)
            with self._lock:
                self.loads += 1
                self._models[key] = model
                while len(self._models) > self.size:
                    dropped, _ = self._models.popitem(last=False)
                    log.info("serving.model_dropped", model=dropped[0], version=dropped[1])
                self._loading.pop(key, None)
        return model

    def keys(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._models)


# The server ------------------------------------------------------------------------------


class ScoringServer(BackgroundHTTPServer):
    """Serves the local endpoints recorded in ``store`` (see the module docstring).

    ``start`` returns once the socket listens (port 0 picks a free port; see ``url``) and
    raises OSError when it cannot bind; ``stop`` is idempotent and waits for the serving
    thread. Loading a model blocks only the call that needs it.
    """

    def __init__(
        self,
        store: EndpointStore,
        tracking_uri: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        cache_size: int = 8,
        secrets: Iterable[str] = (),
        loader: Loader | None = None,
    ) -> None:
        super().__init__(host, port)
        self.store = store
        self.records = CachedEndpoints(store)
        self.secrets = tuple(s for s in secrets if s)
        load = loader or (lambda name, version: load_registered(tracking_uri, name, version))
        self.models = ModelCache(lambda name, version: Served.of(load(name, version)), cache_size)

    thread_name = "scoring-server"

    def stop(self) -> None:
        super().stop()
        self.records.close()

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return reply_handler(
            server_version="automl-service-scoring",
            log=log,
            log_event="serving.http",
            timeout=30.0,  # seconds a client may take to send its request
            get=self.answer_get,
            post=self.answer_post,
            max_body_bytes=MAX_BODY_BYTES,
            protocol_version="HTTP/1.1",
            on_error=self.answer_failed,
        )

    # Answers ------------------------------------------------------------------------

    def answer_get(self, path: str) -> Reply:
        """The answer to ``GET path``."""
        path = urlsplit(path).path.rstrip("/") or "/"
        if path == HEALTHZ_PATH:
            return json_reply(HTTPStatus.OK, {"status": "ok"})
        if path == ENDPOINTS_PATH:
            listed = [self._describe(record) for record in self.store.endpoints()]
            return json_reply(HTTPStatus.OK, {"endpoints": listed})
        name, action = _endpoint_path(path)
        if name is not None and action == "":
            record = self.records.get(name)
            if record is None:
                return _unknown(name)
            return json_reply(HTTPStatus.OK, self._describe(record))
        if name is not None and action == "score":
            return json_reply(
                HTTPStatus.METHOD_NOT_ALLOWED, {"error": "score with POST"}, ("Allow", "POST")
            )
        return json_reply(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def answer_post(self, path: str, body: bytes) -> Reply:
        """The answer to ``POST path`` with ``body``."""
        name, action = _endpoint_path(urlsplit(path).path)
        if name is None or action != "score":
            return json_reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
        return self.score(name, body)

    def score(self, name: str, body: bytes) -> Reply:
        """Score ``body`` with the live deployment of endpoint ``name``."""
        record = self.records.get(name)
        if record is None:
            return _unknown(name)
        try:
            table = read_scoring_body(body)
        except BadInput as exc:
            return json_reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        live = record.live
        missing = missing_columns(table.columns, live.input_columns)
        if missing:
            return json_reply(
                HTTPStatus.BAD_REQUEST,
                {
                    "error": f"missing columns: {', '.join(missing)}",
                    "missing_columns": missing,
                    "expected_columns": list(live.input_columns),
                },
            )
        try:
            served: Served = self.models.get(live.model_name, live.model_version)
        except (AutoMLServiceError, OSError) as exc:
            log.error("serving.load_failed", deployment=live.name, error=self._scrub(str(exc)))
            status = (
                HTTPStatus.INTERNAL_SERVER_ERROR
                if isinstance(exc, PermanentError)
                else HTTPStatus.SERVICE_UNAVAILABLE
            )
            return json_reply(status, {"error": f"deployment {live.name} cannot be loaded"})
        try:
            answer = served.answer(table, live.input_columns, live.name)
        except NotNumbers as exc:
            return json_reply(
                HTTPStatus.BAD_REQUEST, {"error": str(exc), "mistyped_columns": exc.columns}
            )
        except OutsideHorizon as exc:  # a forecaster refused a row, naming it
            reason = self._scrub(str(exc))
            log.info("serving.predict_refused", deployment=live.name, error=reason)
            return json_reply(HTTPStatus.BAD_REQUEST, {"error": reason})
        except Exception as exc:  # the model refused this input
            reason = self._scrub(f"{type(exc).__name__}: {exc}")
            log.info("serving.predict_failed", deployment=live.name, error=reason)
            return json_reply(
                HTTPStatus.BAD_REQUEST, {"error": f"the model could not score this input: {reason}"}
            )
        return Reply(HTTPStatus.OK, answer)

    def answer_failed(self, exc: Exception) -> Reply:
        """The answer when building one raised ``exc``: 503 while the endpoint records are
        busy or unreachable, else 500; logged, scrubbed, and no details."""
        if isinstance(exc, TransientError):
            log.warning("serving.records_unavailable", error=self._scrub(str(exc)))
            return json_reply(
                HTTPStatus.SERVICE_UNAVAILABLE, {"error": "endpoint records unavailable"}
            )
        log.error("serving.answer_failed", error=self._scrub(str(exc)))
        return json_reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})

    def _describe(self, record: EndpointRecord) -> dict[str, Any]:
        return {
            "name": record.name,
            "deployment": record.deployment,
            "previous_deployment": record.previous_deployment,
            "updated_at": record.updated_at,
            "scoring_uri": scoring_uri(
                self.host, self.bound_port if self._server else self.port, record.name
            ),
            "live": record.live.as_json(),
        }

    def _scrub(self, text: str) -> str:
        return scrub(text, self.secrets)


def _endpoint_path(path: str) -> tuple[str | None, str]:
    """(endpoint name, what follows it) of ``/endpoints/{name}[/{action}]``."""
    prefix = ENDPOINTS_PATH + "/"
    if not path.startswith(prefix):
        return None, ""
    parts = path[len(prefix) :].split("/")
    if not parts[0] or len(parts) > 2:
        return None, ""
    return unquote(parts[0]), parts[1] if len(parts) == 2 else ""


def _unknown(name: str) -> Reply:
    return json_reply(HTTPStatus.NOT_FOUND, {"error": f"no endpoint named {name!r}"})
