"""Advisory file locks (fcntl.flock): held by open file, released when the holder dies."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def try_lock(path: Path, wait_seconds: float = 0.0) -> IO[bytes] | None:
    """An open file holding an exclusive lock on ``path``, or None if another holds it.

    Retries for ``wait_seconds``. The lock lives as long as the returned file stays open
    (or the process lives): a killed holder frees it at once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("ab")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                return None
            time.sleep(0.05)


def is_locked(path: Path) -> bool:
    """Whether some process holds the lock on ``path`` now (probe and release)."""
    if not path.exists():
        return False
    handle = try_lock(path)
    if handle is None:
        return True
    handle.close()
    return False


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Block until the exclusive lock on ``path`` is ours; release on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def take_slot(slots_dir: Path, count: int) -> IO[bytes] | None:
    """Hold one of ``count`` slot locks, or None when all are taken."""
    for index in range(count):
        handle = try_lock(slots_dir / f"slot-{index}.lock")
        if handle is not None:
            return handle
    return None


def free_slots(slots_dir: Path, count: int) -> int:
    """How many of the ``count`` slots look free now (a hint: the trainer takes one for
    real)."""
    return sum(not is_locked(slots_dir / f"slot-{i}.lock") for i in range(count))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
