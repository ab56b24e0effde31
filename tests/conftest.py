"""Fixtures every test module may use: isolated settings and data folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from automl_service.settings import Settings


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's AUTOML_SERVICE_* or MLflow environment."""
    for name in list(os.environ):
        if name.startswith(("AUTOML_SERVICE_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'stray-mlflow.db'}")
    yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Local-backend settings in a temporary folder, with short re-check intervals."""
    s = Settings()
    s.local.data_dir = tmp_path / "data"
    s.worker.poll_interval_seconds = 0.2
    s.worker.max_poll_interval_seconds = 0.5
    s.worker.recheck_seconds = 0.5
    s.worker.max_recheck_seconds = 1.0
    s.worker.retry_seconds = 0.2
    s.worker.max_retry_seconds = 0.5
    s.worker.visibility_timeout_seconds = 30.0
    return s
