"""Logging set-up: JSON lines in containers, console rendering on a terminal.

Every line goes through one standard-library handler on the root logger whose formatter is
structlog's ``ProcessorFormatter``, so the service's own structlog events and the records
of libraries that log through ``logging`` (MLflow, Azure SDKs, ``warnings``) come out in the
same shape: one JSON object per line with ``timestamp``, ``level``, ``logger`` and
``event``. Bind the request id with ``structlog.contextvars.bound_contextvars(request_id=...)``
and every line logged inside carries it, library lines included.

Libraries are kept at WARNING (unless the level is ``debug``), and a library message
repeated more than ``REPEAT_BURST`` times within ``REPEAT_WINDOW_SECONDS`` is dropped; the
next one let through says how many were. Every string value of every line is scrubbed of
the secrets given to ``configure_logging`` and of anything that looks like a credential.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from .redact import scrub_value
from .settings import LoggingSettings

#: Our own loggers' namespace; libraries are everything else.
SERVICE_LOGGER = "automl_service"

#: At most this many identical library messages per window; the rest are dropped.
REPEAT_BURST = 5
REPEAT_WINDOW_SECONDS = 60.0

#: Library loggers that are chatty even at INFO; held at WARNING unless ``debug``.
NOISY_LOGGERS = (
    "azure",
    "azure.core.pipeline.policies.http_logging_policy",
    "mlflow",
    "alembic",
    "urllib3",
    "flaml",
    "huey",
    "py.warnings",
)

#: Held at WARNING even at ``debug``: at INFO they log every SQL statement.
ALWAYS_QUIET = ("sqlalchemy",)

#: Loggers MLflow gives a plain-text handler of its own (``propagate = False``).
_MLFLOW_OWNED = ("mlflow", "sqlalchemy.engine", "alembic", "huey")


class RepeatFilter(logging.Filter):
    """Lets through at most ``burst`` records with the same logger, level and message
    template per ``window`` seconds. The first record let through after some were
    dropped carries ``suppressed`` (how many). Thread-safe."""

    def __init__(
        self,
        burst: int = REPEAT_BURST,
        window: float = REPEAT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [window start, let through in window, dropped since last let through]
        self._seen: dict[tuple[str, int, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == SERVICE_LOGGER or record.name.startswith(SERVICE_LOGGER + "."):
            return True  # our own events are never rate-limited
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window:
                dropped = int(entry[2]) if entry else 0
                self._seen[key] = [now, 1, 0]
                if len(self._seen) > 10_000:  # bounded memory under many distinct messages
                    self._seen = {key: self._seen[key]}
            elif entry[1] < self.burst:
                entry[1] += 1
                dropped, entry[2] = int(entry[2]), 0
            else:
                entry[2] += 1
                return False
        if dropped:
            record.suppressed = dropped
        return True


def scrubber(secrets: Iterable[str]) -> Processor:
    """A processor that scrubs every string value (nested ones too) of an event."""
    known = tuple(s for s in secrets if s)

    def process(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        for key, value in list(event_dict.items()):
            if not key.startswith("_"):
                event_dict[key] = scrub_value(value, known)
        return event_dict

    return process


def _request_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """A request's lines carry ``request_id``, ``job_name`` and ``step`` (None when no step
    is under way), so a query on any of them never misses a line of that request."""
    if "request_id" in event_dict:
        event_dict.setdefault("job_name", None)
        event_dict.setdefault("step", None)
    return event_dict


def use_json(settings: LoggingSettings, stream: TextIO | None = None) -> bool:
    """JSON when asked, or on ``auto`` when the stream is not a terminal."""
    stream = stream or sys.stderr
    if settings.format == "auto":
        return not stream.isatty()
    return settings.format == "json"


def configure_logging(
    settings: LoggingSettings, *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Route structlog and standard-library logging to ``stream`` (default stderr) as JSON
    lines or console text, scrubbing ``secrets``. Idempotent: calling it again replaces the
    previous set-up."""
    stream = stream or sys.stderr
    level = getattr(logging, settings.level.upper())
    as_json = use_json(settings, stream)
    # MLflow installs a plain-text handler on its loggers when imported; ask it not to, and
    # undo it if it already did, so its records reach the root handler below.
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    for name in _MLFLOW_OWNED:
        owned = logging.getLogger(name)
        owned.handlers = [h for h in owned.handlers if getattr(h, "_automl_service", False)]
        owned.propagate = True

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _request_fields,
    ]
    renderer: Processor
    if as_json:
        renderer = structlog.processors.JSONRenderer()
        tail: list[Processor] = [structlog.processors.format_exc_info]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
        tail = []
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(allow=["suppressed"])],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tail,
            scrubber(secrets),
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RepeatFilter())
    handler._automl_service = True  # type: ignore[attr-defined]

    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_automl_service", False)]
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))
    logging.getLogger(SERVICE_LOGGER).setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)
    for name in ALWAYS_QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        context_class=dict,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
