"""Local stores that many processes open at once, and trainers that cannot start: real
MLflow SQLite stores, real processes started at the same moment."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from fixtures_local import make_request
from mlflow.store.db import utils as mlflow_db_utils

from automl_service.engines.base import JobState
from automl_service.engines.local import LocalEngine
from automl_service.engines.local.store import prepare_store
from automl_service.errors import TransientError
from automl_service.settings import LocalSettings

pytest_plugins = ["fixtures_local"]

START_TOGETHER = """
import sys, time
at = float(sys.argv[1])
while time.time() < at:
    time.sleep(0.001)
from automl_service.cli import main
sys.exit(main(["drain"]))
"""

#: MLflow's schema helpers are private and carry no type hints.
db_utils: Any = mlflow_db_utils


def _tables(db: Path) -> set[str]:
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _revision(db: Path) -> str | None:
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    try:
        return str(db_utils._get_schema_version(engine))
    finally:
        engine.dispose()


@pytest.mark.process
def test_workers_started_together_on_a_fresh_data_dir_all_start(tmp_path: Path) -> None:
    """Three `drain` processes started at the same instant on a new data folder all exit 0
    and leave one fully migrated MLflow store (without the lock they crashed in the
    schema migration race)."""
    data = tmp_path / "data"
    env = {**os.environ, "AUTOML_SERVICE_LOCAL__DATA_DIR": str(data)}
    at = str(time.time() + 8)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", START_TOGETHER, at],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=180)[0] for proc in procs]

    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    assert not [name for name in _tables(data / "mlflow.db") if name.startswith("_alembic_tmp")]
    assert _revision(data / "mlflow.db") == db_utils._get_latest_schema_revision()


def test_a_half_migrated_store_is_recovered(tmp_path: Path) -> None:
    """A store left with alembic's scratch tables and an old schema by a crash mid-migration
    is brought to the current schema, the scratch tables gone."""
    db = tmp_path / "mlflow.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    db_utils.InitialBase.metadata.create_all(engine)  # the first schema, never migrated
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text('CREATE TABLE "_alembic_tmp_runs" (run_uuid TEXT)'))
    engine.dispose()

    prepare_store(f"sqlite:///{db}", tmp_path / "artifacts")

    assert "_alembic_tmp_runs" not in _tables(db)
    assert _revision(db) == db_utils._get_latest_schema_revision()


def _unknown_revision(tmp_path: Path) -> Path:
    """A store stamped with a schema revision MLflow does not know."""
    db = tmp_path / "data" / "mlflow.db"
    prepare_store(f"sqlite:///{db}", tmp_path / "artifacts")
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    engine.dispose()
    return db


def test_a_store_that_cannot_be_migrated_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    """A store stamped with a schema revision MLflow does not know is refused with a
    store error that says how to get going again."""
    db = _unknown_revision(tmp_path)
    with pytest.raises(TransientError, match="restore it from a backup"):
        prepare_store(f"sqlite:///{db}", tmp_path / "artifacts")


@pytest.mark.process
def test_the_cli_refuses_a_store_that_cannot_be_migrated_with_exit_3(tmp_path: Path) -> None:
    """The same refusal from the CLI: exit 3 and the advice, without a traceback."""
    db = _unknown_revision(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "automl_service", "drain"],
        env={**os.environ, "AUTOML_SERVICE_LOCAL__DATA_DIR": str(db.parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    assert "restore it from a backup" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.process
def test_a_trainer_that_cannot_start_ends_the_job_with_its_error(
    local_settings: LocalSettings, tmp_path: Path
) -> None:
    """A trainer that dies before it takes its job (here: an interpreter that fails at
    once) is started again only up to the start limit, then the job fails with the
    trainer's last error line instead of being started forever."""
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\necho 'ImportError: cannot import name X' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    settings = local_settings.model_copy(update={"max_trainer_starts": 3})
    engine = LocalEngine(settings, python=str(broken))
    request = make_request("regression", request_id="t-nostart")

    states = [engine.ensure_job(request).state for _ in range(5)]

    assert states[-1] is JobState.FAILED
    assert states.count(JobState.FAILED) <= 3  # it gave up after three starts
    status = engine.ensure_job(request)
    assert status.error is not None
    assert "3 times" in status.error and "ImportError: cannot import name X" in status.error
