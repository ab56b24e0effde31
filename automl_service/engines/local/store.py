"""The local MLflow store: created or migrated once, by one process at a time.

MLflow creates and migrates a SQLite store on first use, in whichever process gets there
first; two processes doing it at once race ("table ... already exists", alembic "expected
to match one row") and can leave it half-migrated. ``prepare_store`` does that work under
an exclusive file lock beside the database, so replicas started together wait for each
other, and it recovers a store a crash left half-migrated where it can.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from ...errors import TransientError
from ...logs import get_logger
from .locks import try_lock

log = get_logger(__name__)

#: How long a process waits for another one to finish creating or migrating the store.
LOCK_WAIT_SECONDS = 300.0


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for any other store."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or not parsed.path or parsed.path == "/:memory:":
        return None
    return Path(parsed.path)


def prepare_store(uri: str, artifact_root: Path) -> None:
    """Create or migrate the SQLite tracking store at ``uri`` to MLflow's current schema,
    holding a file lock so that only one process does it. A no-op for other stores (a
    tracking server migrates its own); a few milliseconds for a store that is current.

    Raises TransientError (exit 3) when the lock is not freed in time or the store cannot
    be brought to the current schema, saying what to do.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_file = path.with_name(path.name + ".init.lock")
    lock = try_lock(lock_file, LOCK_WAIT_SECONDS)
    if lock is None:
        raise TransientError(
            f"another process has been creating or migrating the MLflow store {path} for "
            f"{LOCK_WAIT_SECONDS:.0f}s; if none is running, check that {lock_file} is on a "
            "file system with working locks"
        )
    try:
        _migrate(uri, path, artifact_root)
    finally:
        lock.close()


def _migrate(uri: str, path: Path, artifact_root: Path) -> None:
    import sqlalchemy
    from mlflow.store.db import utils as db_utils
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    engine = sqlalchemy.create_engine(uri)
    try:
        leftovers = [
            name
            for name in sqlalchemy.inspect(engine).get_table_names()
            if name.startswith("_alembic_tmp_")
        ]
        if leftovers:
            # Scratch copies of a table alembic was rebuilding when its process died;
            # the original table is still there, so dropping them loses nothing.
            log.warning("store.half_migrated", path=str(path), leftover_tables=leftovers)
            with engine.begin() as conn:
                for name in leftovers:
                    conn.execute(sqlalchemy.text(f'DROP TABLE "{name}"'))
        try:
            SqlAlchemyStore(uri, artifact_root.as_uri())  # type: ignore[no-untyped-call]
            current = db_utils._get_schema_version(engine)  # type: ignore[no-untyped-call]
            head = db_utils._get_latest_schema_revision()  # type: ignore[no-untyped-call]
            if current != head:
                log.warning("store.migrating", path=str(path), from_revision=current)
                db_utils._upgrade_db(engine)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise TransientError(
                f"the MLflow store {path} could not be brought to the current schema "
                f"({type(exc).__name__}: {exc}); restore it from a backup, or move it "
                "aside to start a new store"
            ) from exc
    finally:
        engine.dispose()
