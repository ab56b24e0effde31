"""The latest RequestResult per request id, kept in a SQLite file.

It may share the queue's file (its own table). Each result is stored whole as JSON beside
indexed ``state`` and ``updated_at`` columns, so listings never parse more than they return.
"""

from __future__ import annotations

import time
from pathlib import Path

from .results import RequestResult, RequestState
from .sqlite_db import ensure_schema, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS request_results (
    request_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS request_results_state ON request_results (state, updated_at);
CREATE INDEX IF NOT EXISTS request_results_updated ON request_results (updated_at);
CREATE TABLE IF NOT EXISTS request_bodies (
    request_id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS message_fingerprints (
    message_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    recorded_at REAL NOT NULL
);
"""


class SqliteResultStore:
    """Implements ``automl_service.results.ResultStore`` on the SQLite file ``path``.

    Safe with several processes. Every call is one short transaction and raises
    TransientError when the database stays locked past the busy timeout.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        ensure_schema(self.path, _SCHEMA)

    def put(self, result: RequestResult) -> None:
        """Store ``result`` as the latest for its request. Idempotent; a result older
        (by ``updated_at``) than the one stored is ignored, so a slow writer cannot roll a
        request back; once a request is canceled only a later attempt replaces it, so a
        worker still advancing it cannot undo the cancel."""
        with transaction(self.path, immediate=True) as conn:
            conn.execute(
                "INSERT INTO request_results (request_id, state, updated_at, body)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET"
                " state = excluded.state, updated_at = excluded.updated_at,"
                " body = excluded.body WHERE excluded.updated_at >= request_results.updated_at"
                " AND (request_results.state != 'canceled' OR excluded.state = 'canceled'"
                " OR coalesce(json_extract(excluded.body, '$.attempt'), 1)"
                " > coalesce(json_extract(request_results.body, '$.attempt'), 1))",
                (
                    result.request_id,
                    result.state.value,
                    result.updated_at,
                    result.model_dump_json(),
                ),
            )

    def get(self, request_id: str) -> RequestResult | None:
        """The latest result for ``request_id``, or None."""
        with transaction(self.path) as conn:
            row = conn.execute(
                "SELECT body FROM request_results WHERE request_id = ?", (request_id,)
            ).fetchone()
        return None if row is None else RequestResult.model_validate_json(row[0])

    def recent(self, limit: int = 20, state: RequestState | None = None) -> list[RequestResult]:
        """Up to ``limit`` results, most recently updated first (only ``state`` if given)."""
        query = "SELECT body FROM request_results"
        args: tuple[object, ...] = ()
        if state is not None:
            query += " WHERE state = ?"
            args = (state.value,)
        query += " ORDER BY updated_at DESC, request_id LIMIT ?"
        with transaction(self.path) as conn:
            rows = conn.execute(query, (*args, limit)).fetchall()
        return [RequestResult.model_validate_json(row[0]) for row in rows]

    def pinned_fingerprint(self, message_id: str) -> str | None:
        """The data fingerprint recorded for ``message_id``, if any."""
        with transaction(self.path) as conn:
            row = conn.execute(
                "SELECT fingerprint FROM message_fingerprints WHERE message_id = ?",
                (message_id,),
            ).fetchone()
        return None if row is None else str(row[0])

    def pin_fingerprint(self, message_id: str, fingerprint: str) -> str:
        """The data fingerprint first recorded for ``message_id``, recording ``fingerprint``
        if none was: a message redelivered after its file changed stays the request it
        was when first received."""
        with transaction(self.path, immediate=True) as conn:
            conn.execute(
                "INSERT INTO message_fingerprints (message_id, fingerprint, recorded_at)"
                " VALUES (?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                (message_id, fingerprint, time.time()),
            )
            row = conn.execute(
                "SELECT fingerprint FROM message_fingerprints WHERE message_id = ?",
                (message_id,),
            ).fetchone()
        return str(row[0])

    def keep_request(self, request_id: str, body: str) -> None:
        """Keep the request's message as it runs (the latest attempt's), for retries."""
        with transaction(self.path, immediate=True) as conn:
            conn.execute(
                "INSERT INTO request_bodies (request_id, body) VALUES (?, ?)"
                " ON CONFLICT (request_id) DO UPDATE SET body = excluded.body",
                (request_id, body),
            )

    def kept_request(self, request_id: str) -> str | None:
        """The message kept for ``request_id``, or None."""
        with transaction(self.path) as conn:
            row = conn.execute(
                "SELECT body FROM request_bodies WHERE request_id = ?", (request_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def counts(self) -> dict[RequestState, int]:
        """How many requests are in each state."""
        with transaction(self.path) as conn:
            rows = conn.execute(
                "SELECT state, count(*) FROM request_results GROUP BY state"
            ).fetchall()
        return {RequestState(state): int(n) for state, n in rows}
