"""Queue adapters: the local SQLite queue and Azure Storage Queue."""

from .base import Message, Queue, ResultSink

__all__ = ["Message", "Queue", "ResultSink"]
