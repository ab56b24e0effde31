"""The endpoint records as the scoring server reads them on every call: from memory
while ``endpoints.db`` is unchanged, from the file as soon as anything commits to it.

A scoring call used to open the file and read its endpoint's record (0.3-0.6 ms of a
single-row call); now it takes the file's ``ChangeStamp`` (a few microseconds) and reads
the record only when the stamp moved, so a switch of deployment by any process (a deploy,
a rollback) is seen by the next call, in every server process.
"""

from __future__ import annotations

import threading

from ...sqlite_db import ChangeStamp
from .endpoint_store import EndpointRecord, EndpointStore


class CachedEndpoints:
    """``EndpointStore.get`` answered from memory until the store's file changes."""

    def __init__(self, store: EndpointStore) -> None:
        self.store = store
        self.stamp = ChangeStamp(store.path)
        self._records: dict[str, EndpointRecord | None] = {}
        self._seen: tuple[int, ...] | None = None
        self._lock = threading.Lock()
        self.reads = 0  # how many times the store was read

    def get(self, name: str) -> EndpointRecord | None:
        """The endpoint ``name`` with its live deployment, or None (as ``store.get``)."""
        stamp = self.stamp.current()  # taken before reading: a later change moves it
        with self._lock:
            if stamp is None or stamp != self._seen:
                self._records.clear()
                self._seen = stamp
            elif name in self._records:
                return self._records[name]
        record = self.store.get(name)
        with self._lock:
            self.reads += 1
            if stamp is not None and stamp == self._seen:
                self._records[name] = record
        return record

    def close(self) -> None:
        self.stamp.close()
