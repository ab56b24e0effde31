"""Fixtures every test module may use: isolated settings and data folders."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from automl_service.settings import Settings

#: Session fixtures that start a server in a child process: ``azurite`` (Azurite's queue
#: service), ``azurite_blob`` (its blob service) and ``mlflow_server`` (``mlflow server``).
#: A test that uses one is a ``process`` test, marked here so that none is forgotten.
PROCESS_FIXTURES = frozenset({"azurite", "azurite_blob", "mlflow_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``process`` every test that uses a fixture of PROCESS_FIXTURES."""
    for item in items:
        if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.process)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's AUTOML_SERVICE_* or MLflow environment."""
    for name in list(os.environ):
        if name.startswith(("AUTOML_SERVICE_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'stray-mlflow.db'}")
    # A test that runs the command line in-process routes logging to its captured stream;
    # the next test must not write to (or flush) that stream once pytest has closed it.
    handlers = logging.getLogger().handlers[:]
    yield
    logging.getLogger().handlers = handlers


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow SQLite store, made once per session (MLflow's
    migrations take seconds); tests copy it."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def settings(tmp_path: Path, mlflow_db_template: Path) -> Settings:
    """Local-backend settings in a temporary folder, with short re-check intervals; the
    MLflow store is copied from the migrated template."""
    s = Settings()
    s.local.data_dir = tmp_path / "data"
    s.local.data_dir.mkdir(parents=True)
    shutil.copyfile(mlflow_db_template, s.local.data_dir / "mlflow.db")
    s.worker.poll_interval_seconds = 0.2
    s.worker.max_poll_interval_seconds = 0.5
    s.worker.recheck_seconds = 0.5
    s.worker.max_recheck_seconds = 1.0
    s.worker.retry_seconds = 0.2
    s.worker.max_retry_seconds = 0.5
    s.worker.visibility_timeout_seconds = 30.0
    return s
