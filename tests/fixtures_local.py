"""Fixtures for the local engine: settings in a temp dir, an engine that stops its trainers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automl_service.engines.base import JobStatus
from automl_service.engines.local import LocalEngine
from automl_service.engines.local.layout import JobDir
from automl_service.request import AutoMLRequest
from automl_service.settings import LocalSettings

#: FLAML's budget is soft and the cores are shared: terminal states get this long.
TERMINAL_TIMEOUT = 240.0


@pytest.fixture
def local_settings(tmp_path: Path, mlflow_db_template: Path) -> LocalSettings:
    """Settings with a data folder of its own, its MLflow store copied from the template."""
    settings = LocalSettings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    shutil.copyfile(mlflow_db_template, settings.data_dir / "mlflow.db")
    return settings


@pytest.fixture
def engine(local_settings: LocalSettings) -> Iterator[LocalEngine]:
    """A LocalEngine; trainers it started that still run at the end are killed."""
    made = LocalEngine(local_settings)
    yield made
    jobs = local_settings.data_dir / "jobs"
    for job_path in jobs.glob("*") if jobs.exists() else []:
        pid = JobDir(job_path).spawned_pid()
        if pid is not None:
            _kill(pid)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # the trainer leads its own session


def make_request(kind: str, **changes: Any) -> AutoMLRequest:
    """A small request on bundled data: ``classification``, ``regression``, ``forecasting``."""
    bases: dict[str, dict[str, Any]] = {
        "classification": {
            "task": "classification",
            "training_data": "sample:breast_cancer",
            "target_column_name": "target",
            "primary_metric": "AUC_weighted",
        },
        "regression": {
            "task": "regression",
            "training_data": "sample:diabetes",
            "target_column_name": "target",
        },
        "forecasting": {
            "task": "forecasting",
            "training_data": "sample:co2",
            "target_column_name": "co2",
            "forecasting": {"time_column_name": "date", "forecast_horizon": 12},
        },
    }
    base = bases[kind]
    limits = {"timeout_seconds": 5}
    body = {"request_id": f"t-{kind}", "limits": limits, **base, **changes}
    return AutoMLRequest.model_validate(body)


def wait_terminal(
    engine: LocalEngine,
    job_name: str,
    timeout: float = TERMINAL_TIMEOUT,
    request: AutoMLRequest | None = None,
) -> JobStatus:
    """Poll job_status until the job ends; fail the test on timeout. With ``request``,
    poll as the worker does, with ensure_job: a job queued while the training slot was
    still held (the previous trainer exiting) then starts once it is free."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = engine.ensure_job(request) if request else engine.job_status(job_name)
        assert status is not None
        if status.state.terminal:
            return status
        time.sleep(0.5)
    pytest.fail(f"{job_name} did not end within {timeout} s")
