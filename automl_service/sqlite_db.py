"""SQLite helpers shared by every SQLite file of the service: the local queue, the result
store and the local endpoint records.

Connections are in autocommit mode with WAL and a busy timeout; every transaction is short
and on a fresh connection, so several processes share a file safely. SQLite errors surface
as TransientError.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
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


class ChangeStamp:
    """A cheap stamp of a SQLite file that differs whenever another connection (in this
    process or another) committed a change since it was last taken, or the file was
    replaced: the file's device, inode and change time, and ``PRAGMA data_version`` of one
    kept read connection. A few microseconds, against a fresh connection's few hundred.
    Thread-safe. None while the file is missing; TransientError when SQLite fails."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._file: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def current(self) -> tuple[int, ...] | None:
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        file = (status.st_dev, status.st_ino, status.st_ctime_ns)
        with self._lock:
            try:
                if self._conn is None or file != self._file:
                    self._close()
                    self._conn = sqlite3.connect(
                        self.path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False
                    )
                    self._file = file
                (version,) = self._conn.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error as exc:
                self._close()
                raise TransientError(f"SQLite database {self.path}: {why(self.path, exc)}") from exc
        return (*file, int(version))

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = self._file = None
