"""The local work queue: one SQLite file, safe for several processes at once.

Messages live in one table; a received message is hidden until ``visible_at`` and carries a
fresh receipt, as in Azure Storage Queue: a receiver that dies holding a message only delays
it by the visibility timeout. ``receive`` takes its messages inside ``BEGIN IMMEDIATE`` so two
receivers never get the same message. Every transaction is short; a busy timeout waits out
the other writers, and a database still locked after it surfaces as TransientError.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import StaleReceipt
from ..logs import get_logger
from ..sqlite_db import ensure_schema, transaction
from .base import Message

log = get_logger(__name__)

Clock = Callable[[], float]

#: How often an idle receiver looks at the bell, and the file clock's coarsest tick.
BELL_INTERVAL_SECONDS = 0.1
BELL_TICK_NS = 20_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    inserted_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receipt TEXT,
    dequeue_count INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages (queue, visible_at);
CREATE TABLE IF NOT EXISTS queue_poison (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    dequeue_count INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    inserted_at REAL NOT NULL,
    poisoned_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_poison_time ON queue_poison (queue, poisoned_at);
"""


@dataclass(frozen=True)
class PoisonEntry:
    """A message that failed for good, with the original body and why."""

    message_id: str
    body: str
    reason: str
    dequeue_count: int
    failures: int
    inserted_at: float
    poisoned_at: float


class SqliteQueue:
    """A durable queue named ``name`` in the SQLite file ``path`` (created if missing).

    Many queues may share one file. Every method is a short transaction; none blocks longer
    than the busy timeout, after which it raises TransientError. Operations on a received
    message need its current receipt: a stale one raises StaleReceipt (never a silent
    no-op), except ``delete`` of a message already gone.
    """

    def __init__(self, path: Path, name: str, *, clock: Clock = time.time) -> None:
        self.path = Path(path)
        self.name = name
        self._clock = clock
        #: Touched by every send: an idle receiver watching it wakes within a tenth of a
        #: second instead of at its next poll.
        self.bell = self.path.with_name(self.path.name + ".bell")
        self._received_at_ns = 0
        ensure_schema(self.path, _SCHEMA)

    def send(self, body: str, *, delay: float = 0.0) -> str:
        """Enqueue ``body`` (visible after ``delay`` seconds); returns the message id."""
        message_id = uuid.uuid4().hex
        now = self._clock()
        with transaction(self.path) as conn:
            conn.execute(
                "INSERT INTO queue_messages (queue, message_id, body, inserted_at, visible_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (self.name, message_id, body, now, now + delay),
            )
        self.bell.touch()
        log.debug("queue.sent", queue=self.name, message_id=message_id)
        return message_id

    def wait_for_messages(self, seconds: float, stop: threading.Event) -> None:
        """Wait up to ``seconds``, until ``stop``, or until the bell rings: a send since
        this queue's last receive (by any process on this file)."""
        deadline = time.monotonic() + seconds
        # File times are kept at a coarse clock tick: a ring a little before the receive
        # counts too, at worst costing one empty receive.
        since = self._received_at_ns - BELL_TICK_NS
        while not stop.is_set():
            try:
                if self.bell.stat().st_mtime_ns >= since:
                    return
            except FileNotFoundError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                return
            stop.wait(min(BELL_INTERVAL_SECONDS, left))

    def receive(self, max_messages: int, visibility_timeout: float) -> list[Message]:
        """Take up to ``max_messages`` visible messages, oldest first, hiding each for
        ``visibility_timeout`` seconds under a new receipt. Never returns a message that
        another receiver holds (unexpired)."""
        self._received_at_ns = time.time_ns()
        if max_messages < 1:
            return []
        now = self._clock()
        taken: list[Message] = []
        with transaction(self.path, immediate=True) as conn:
            rows = conn.execute(
                "SELECT message_id, body, dequeue_count, failures, inserted_at"
                " FROM queue_messages WHERE queue = ? AND visible_at <= ?"
                " ORDER BY visible_at, seq LIMIT ?",
                (self.name, now, max_messages),
            ).fetchall()
            for message_id, body, dequeue_count, failures, inserted_at in rows:
                receipt = uuid.uuid4().hex
                conn.execute(
                    "UPDATE queue_messages SET receipt = ?, visible_at = ?,"
                    " dequeue_count = dequeue_count + 1 WHERE message_id = ?",
                    (receipt, now + visibility_timeout, message_id),
                )
                taken.append(
                    Message(message_id, body, receipt, dequeue_count + 1, failures, inserted_at)
                )
        return taken

    def hide(self, message: Message, delay: float, *, failed: bool = False) -> Message:
        """Hide ``message`` for ``delay`` seconds from now under a new receipt; ``failed``
        adds one to ``failures`` (the dequeue count is unchanged). Raises StaleReceipt if
        the receipt no longer holds the message."""
        receipt = uuid.uuid4().hex
        with transaction(self.path, immediate=True) as conn:
            cursor = conn.execute(
                "UPDATE queue_messages SET receipt = ?, visible_at = ?, failures = failures + ?"
                " WHERE queue = ? AND message_id = ? AND receipt = ?",
                (
                    receipt,
                    self._clock() + delay,
                    1 if failed else 0,
                    self.name,
                    message.message_id,
                    message.receipt,
                ),
            )
            if cursor.rowcount != 1:
                raise StaleReceipt(self._lost(conn, message))
            row = conn.execute(
                "SELECT dequeue_count, failures FROM queue_messages WHERE message_id = ?",
                (message.message_id,),
            ).fetchone()
        return Message(
            message.message_id, message.body, receipt, row[0], row[1], message.inserted_at
        )

    def delete(self, message: Message) -> None:
        """Remove a finished message. Idempotent: a message already deleted is not an
        error; one now held under another receipt (or poisoned) raises StaleReceipt."""
        with transaction(self.path, immediate=True) as conn:
            cursor = conn.execute(
                "DELETE FROM queue_messages WHERE queue = ? AND message_id = ? AND receipt = ?",
                (self.name, message.message_id, message.receipt),
            )
            if cursor.rowcount == 1 or self._gone(conn, message):
                return
            raise StaleReceipt(self._lost(conn, message))

    def dead_letter(self, message: Message, reason: str) -> None:
        """Move ``message`` to the poison table with ``reason``, its original body and its
        counts, in one transaction. Idempotent for a message already poisoned; raises
        StaleReceipt if another receiver holds it or it was deleted."""
        with transaction(self.path, immediate=True) as conn:
            row = conn.execute(
                "SELECT body, dequeue_count, failures, inserted_at FROM queue_messages"
                " WHERE queue = ? AND message_id = ? AND receipt = ?",
                (self.name, message.message_id, message.receipt),
            ).fetchone()
            if row is None:
                poisoned = conn.execute(
                    "SELECT 1 FROM queue_poison WHERE message_id = ?", (message.message_id,)
                ).fetchone()
                if poisoned:
                    return
                raise StaleReceipt(self._lost(conn, message))
            body, dequeue_count, failures, inserted_at = row
            conn.execute(
                "INSERT INTO queue_poison (queue, message_id, body, reason, dequeue_count,"
                " failures, inserted_at, poisoned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.name,
                    message.message_id,
                    body,
                    reason,
                    dequeue_count,
                    failures,
                    inserted_at,
                    self._clock(),
                ),
            )
            conn.execute("DELETE FROM queue_messages WHERE message_id = ?", (message.message_id,))
        log.warning("queue.poisoned", queue=self.name, message_id=message.message_id, reason=reason)

    def poisoned(self, limit: int = 20) -> list[PoisonEntry]:
        """The newest ``limit`` poison entries of this queue, newest first."""
        with transaction(self.path) as conn:
            rows = conn.execute(
                "SELECT message_id, body, reason, dequeue_count, failures, inserted_at,"
                " poisoned_at FROM queue_poison WHERE queue = ?"
                " ORDER BY poisoned_at DESC, seq DESC LIMIT ?",
                (self.name, limit),
            ).fetchall()
        return [PoisonEntry(*row) for row in rows]

    def visible_count(self) -> int:
        """How many messages could be received now (exact)."""
        with transaction(self.path) as conn:
            row = conn.execute(
                "SELECT count(*) FROM queue_messages WHERE queue = ? AND visible_at <= ?",
                (self.name, self._clock()),
            ).fetchone()
        return int(row[0])

    def check(self) -> None:
        """Raise TransientError if the file cannot be read."""
        with transaction(self.path) as conn:
            conn.execute("SELECT 1 FROM queue_messages LIMIT 1").fetchall()

    # Helpers ------------------------------------------------------------------------

    def _gone(self, conn: sqlite3.Connection, message: Message) -> bool:
        for table in ("queue_messages", "queue_poison"):
            found = conn.execute(
                f"SELECT 1 FROM {table} WHERE message_id = ?", (message.message_id,)
            ).fetchone()
            if found:
                return False
        return True

    def _lost(self, conn: sqlite3.Connection, message: Message) -> str:
        held = conn.execute(
            "SELECT 1 FROM queue_messages WHERE message_id = ?", (message.message_id,)
        ).fetchone()
        if held:
            return (
                f"message {message.message_id} in {self.name} is held under another "
                "receipt: its visibility ran out and it was received again"
            )
        poisoned = conn.execute(
            "SELECT 1 FROM queue_poison WHERE message_id = ?", (message.message_id,)
        ).fetchone()
        if poisoned:
            return f"message {message.message_id} in {self.name} was moved to the poison queue"
        return f"message {message.message_id} in {self.name} was deleted"
