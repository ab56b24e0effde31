"""The queue interface the worker depends on; adapters implement it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """A received message. ``receipt`` proves this receiver still holds it."""

    message_id: str
    body: str
    receipt: str
    dequeue_count: int  # every receive, "not ready yet" re-checks included
    failures: int  # real failed attempts only
    inserted_at: float  # seconds since the epoch


class Queue(Protocol):
    """A work queue with visibility timeouts and a poison queue.

    Every method may raise TransientError (try again later); none blocks for long.
    ``hide``, ``delete`` and ``dead_letter`` raise StaleReceipt when ``message.receipt``
    no longer holds the message (its visibility timeout ran out and another receiver took
    it): the caller no longer owns the message and must let it go. A message stays in the
    queue until ``delete`` or ``dead_letter``: a receiver that dies holding it only delays
    it by the visibility timeout.
    """

    name: str

    def send(self, body: str) -> str:
        """Enqueue ``body``; returns the message id."""
        ...

    def receive(self, max_messages: int, visibility_timeout: float) -> list[Message]:
        """Take up to ``max_messages`` visible messages, hiding each for the timeout."""
        ...

    def hide(self, message: Message, delay: float, *, failed: bool = False) -> Message:
        """Make ``message`` invisible for ``delay`` seconds more; returns it with its new
        receipt. ``failed`` counts a real failed attempt (not a "not ready yet"). Raises
        StaleReceipt when the receipt no longer holds the message."""
        ...

    def delete(self, message: Message) -> None:
        """Remove a finished message. Deleting one already gone is not an error; one that
        another receiver holds now raises StaleReceipt."""
        ...

    def dead_letter(self, message: Message, reason: str) -> None:
        """Move ``message`` to the poison queue with ``reason``. Raises StaleReceipt when
        the receipt no longer holds the message."""
        ...

    def visible_count(self) -> int:
        """How many messages could be received now (approximate for remote queues)."""
        ...

    def check(self) -> None:
        """Raise if the queue cannot be reached (readiness)."""
        ...

    def wait_for_messages(self, seconds: float, stop: threading.Event) -> None:
        """An idle receiver's pause: ``seconds``, less when ``stop`` is set or, where the
        queue can tell, as soon as a message may have been sent since the last receive."""
        ...


class ResultSink(Protocol):
    """Where outcome messages go (a reply queue), in addition to the result store."""

    def publish(self, queue_name: str | None, body: str) -> None:
        """Send an outcome; ``queue_name`` None means the configured default, if any."""
        ...
