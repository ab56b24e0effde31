"""Logging: JSON lines for the service and for libraries, request fields, no secrets, no
floods."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from automl_service.logs import (
    NOISY_LOGGERS,
    REPEAT_BURST,
    RepeatFilter,
    configure_logging,
    get_logger,
)
from automl_service.settings import LoggingSettings

SECRET = "s3cr3t-Valu3-0f-a-K3y"


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """A stream to log to; the logging set-up of the test process is restored after."""
    monkeypatch.setenv("MLFLOW_CONFIGURE_LOGGING", "false")
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    names = ["automl_service", *NOISY_LOGGERS, "some.library"]
    saved = {n: (logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names}
    yield io.StringIO()
    root.handlers, root.level = saved_root[0], saved_root[1]
    for name, (level, propagate) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).propagate = propagate
    logging.captureWarnings(False)
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_service_events_are_json_lines_with_request_fields(stream: io.StringIO) -> None:
    """Inside a request every line carries request_id, job_name and step (None outside a
    step), plus timestamp, level and logger; lines outside carry none of them."""
    configure_logging(LoggingSettings(format="json"), stream=stream)
    log = get_logger("automl_service.worker")
    with structlog.contextvars.bound_contextvars(request_id="r-1", job_name="automl-r-1"):
        log.info("received")
        with structlog.contextvars.bound_contextvars(step="job"):
            log.info("job submitted", attempt=1)
    log.info("idle")

    first, second, third = lines(stream)
    assert first["request_id"] == "r-1" and first["job_name"] == "automl-r-1"
    assert first["step"] is None
    assert second["step"] == "job" and second["attempt"] == 1
    assert {"timestamp", "level", "logger", "event"} <= second.keys()
    assert second["logger"] == "automl_service.worker" and second["level"] == "info"
    assert "request_id" not in third and "step" not in third


def test_library_records_are_json_lines_at_warning_and_above(stream: io.StringIO) -> None:
    """Standard-library records of libraries come out as JSON with the bound request id;
    their INFO is held back at level info, the service's own INFO is not."""
    configure_logging(LoggingSettings(format="json", level="info"), stream=stream)
    with structlog.contextvars.bound_contextvars(request_id="r-2"):
        logging.getLogger("mlflow.store").info("chatty detail")
        logging.getLogger("azure.core.pipeline").warning("retrying %s", "GET /queue")
        logging.getLogger("automl_service.engines").info("own detail")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("old parameter", FutureWarning, stacklevel=1)

    out = lines(stream)
    assert [line["event"] for line in out][:2] == ["retrying GET /queue", "own detail"]
    assert out[0]["logger"] == "azure.core.pipeline" and out[0]["level"] == "warning"
    assert out[0]["request_id"] == "r-2"
    assert out[2]["logger"] == "py.warnings" and "old parameter" in out[2]["event"]
    assert len(out) == 3


def test_debug_lets_library_info_through(stream: io.StringIO) -> None:
    """At level debug, libraries' INFO records are logged too."""
    configure_logging(LoggingSettings(format="json", level="debug"), stream=stream)
    logging.getLogger("mlflow.store").info("chatty detail")
    assert [line["event"] for line in lines(stream)] == ["chatty detail"]


def test_secrets_are_scrubbed_from_every_line(stream: io.StringIO) -> None:
    """Configured secrets and credential-looking values are replaced in event text, in
    nested values, in library messages and in exception tracebacks."""
    configure_logging(LoggingSettings(format="json"), secrets=[SECRET], stream=stream)
    log = get_logger("automl_service.queues")
    log.warning("connect failed", detail={"conn": f"AccountName=a;AccountKey={SECRET}"})
    log.warning("bare", value=f"token {SECRET}", items=[SECRET])
    logging.getLogger("azure.storage").warning("url https://x/q?sig=abcdef123&sv=1")
    try:
        raise RuntimeError(f"boom with {SECRET}")
    except RuntimeError:
        log.exception("failed")

    text = stream.getvalue()
    assert SECRET not in text
    assert "abcdef123" not in text
    out = lines(stream)
    assert out[0]["detail"]["conn"] == "AccountName=a;AccountKey=***"
    assert out[1]["items"] == ["***"]
    assert "sig=***" in out[2]["event"]
    assert "RuntimeError: boom with ***" in out[3]["exception"]


def test_console_rendering_is_not_json(stream: io.StringIO) -> None:
    """The console format renders readable text with the event and its fields."""
    configure_logging(LoggingSettings(format="console"), stream=stream)
    get_logger("automl_service.cli").info("worker.started", queue="automl-requests")
    text = stream.getvalue()
    assert "worker.started" in text and "queue" in text and "automl-requests" in text
    with pytest.raises(ValueError):
        json.loads(text.splitlines()[0])


def test_reconfiguring_replaces_the_handler(stream: io.StringIO) -> None:
    """Calling configure_logging twice leaves one handler: no line is written twice."""
    configure_logging(LoggingSettings(format="json"), stream=stream)
    configure_logging(LoggingSettings(format="json"), stream=stream)
    get_logger("automl_service.x").info("once")
    logging.getLogger("some.library").warning("once too")
    assert [line["event"] for line in lines(stream)] == ["once", "once too"]


def test_repeated_library_messages_are_held_back() -> None:
    """Past the burst, identical library messages are dropped for the window; the first
    one after it says how many were; the service's own records are never dropped."""
    now = [0.0]
    repeats = RepeatFilter(burst=REPEAT_BURST, window=60.0, clock=lambda: now[0])

    def record(name: str, msg: str = "retrying %s") -> logging.LogRecord:
        return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, ("x",), None)

    passed = [repeats.filter(record("azure.core")) for _ in range(REPEAT_BURST + 3)]
    assert passed == [True] * REPEAT_BURST + [False] * 3
    assert repeats.filter(record("azure.core", "another message"))
    assert all(repeats.filter(record("automl_service.worker")) for _ in range(20))

    now[0] = 61.0
    after = record("azure.core")
    assert repeats.filter(after)
    assert getattr(after, "suppressed", None) == 3


@pytest.mark.process
def test_mlflow_logs_json_in_a_real_process(tmp_path: Path) -> None:
    """A process that sets up JSON logging and then imports and uses MLflow writes only
    JSON lines, MLflow's own records (database creation at debug) among them."""
    script = textwrap.dedent(
        f"""
        import logging, warnings
        from automl_service.logs import configure_logging, get_logger
        from automl_service.settings import LoggingSettings

        configure_logging(LoggingSettings(format="json", level="debug"))
        import mlflow
        client = mlflow.MlflowClient(tracking_uri="sqlite:///{tmp_path / "m.db"}")
        client.search_experiments(max_results=1)
        logging.getLogger("mlflow.tracking").warning("from mlflow")
        warnings.warn("a warning", UserWarning)
        get_logger("automl_service.check").info("done")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    parsed = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    loggers = {line["logger"] for line in parsed}
    assert "mlflow.tracking" in loggers and "py.warnings" in loggers
    assert any(name.startswith(("mlflow.store", "alembic")) for name in loggers), loggers
    assert parsed[-1]["event"] == "done"
