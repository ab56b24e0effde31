"""SQLite helpers shared by every SQLite file of the service: the local queue, the result
store and the local endpoint records.

Connections are in autocommit mode with WAL and a busy timeout; every transaction is short
and on a fresh connection, so several processes share a file safely. SQLite errors surface
as TransientError.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import TransientError

#: How long a statement waits for another process's write lock before giving up.
BUSY_TIMEOUT_SECONDS = 10.0


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL and a busy
    timeout. Raises TransientError when the file cannot be opened."""
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error as exc:
        raise TransientError(f"cannot open SQLite database {path}: {why(path, exc)}") from exc
    return conn


@contextmanager
def transaction(path: Path, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    """One short transaction on a fresh connection, committed on success, rolled back on
    error. ``immediate`` takes the write lock at once. SQLite errors (a lock held past the
    busy timeout, a full disk) become TransientError; other errors pass through."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise TransientError(f"SQLite database {path}: {why(path, exc)}") from exc
    finally:
        conn.close()


def ensure_schema(path: Path, schema: str) -> None:
    """Create tables and indexes if missing; safe to run from several processes at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{schema}\nCOMMIT;")
    except sqlite3.Error as exc:
        raise TransientError(f"cannot create tables in {path}: {why(path, exc)}") from exc
    finally:
        conn.close()


#: Below this much free space, a write error is reported as a full folder.
FULL_BELOW_BYTES = 1 << 20


def why(path: Path, exc: sqlite3.Error) -> str:
    """SQLite's error, or what it means: SQLite reports a full disk under its WAL as a
    "disk I/O error", which sends an operator looking for a broken disk."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return str(exc)
    if free < FULL_BELOW_BYTES:
        return f"the folder {path.parent} is full ({free} bytes free; SQLite said: {exc})"
    return str(exc)
