"""Fitting an outcome message into one queue message: pure, no I/O.

A result is never dropped for its size: the leaderboard goes first (rows from the bottom),
then long free-text fields are cut, until the encoded message fits.
"""

from __future__ import annotations

from pydantic import ValidationError

from ..errors import PermanentError
from ..results import RequestResult
from .encoding import MAX_QUEUE_MESSAGE_BYTES, Encoding, encode

_TEXT_FIELDS = ("selection_reason", "deployment_note", "error")


def fit_result(body: str, encoding: Encoding, limit: int = MAX_QUEUE_MESSAGE_BYTES) -> str:
    """``body`` (a ``RequestResult`` as JSON) encoded for the queue, trimmed to ``limit``
    bytes when needed. Raises PermanentError for an oversized body that is not a result."""
    wire = encode(body, encoding)
    if _size(wire) <= limit:
        return wire
    try:
        result = RequestResult.model_validate_json(body)
    except ValidationError:
        raise PermanentError(
            f"message of {_size(wire)} bytes exceeds the queue limit of {limit} and is not a "
            "request result that could be trimmed"
        ) from None
    return encode(trim_result(result, encoding, limit).model_dump_json(), encoding)


def trim_result(result: RequestResult, encoding: Encoding, limit: int) -> RequestResult:
    """The largest trimmed copy of ``result`` whose encoded JSON fits in ``limit``."""
    total = len(result.leaderboard)
    lo, hi = 0, total  # the most rows that fit lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fits(_with_rows(result, mid, total), encoding, limit):
            lo = mid
        else:
            hi = mid - 1
    trimmed = _with_rows(result, lo, total)
    if _fits(trimmed, encoding, limit):
        return trimmed
    cap = max((len(getattr(trimmed, name) or "") for name in _TEXT_FIELDS), default=0)
    while cap > 0:
        cap //= 2
        changes = {
            name: _cut(getattr(trimmed, name), cap)
            for name in _TEXT_FIELDS
            if getattr(trimmed, name) is not None
        }
        candidate = trimmed.model_copy(update=changes)
        if _fits(candidate, encoding, limit):
            return candidate
    return RequestResult(
        request_id=result.request_id,
        state=result.state,
        error="result too large for a queue message; see the result store",
        updated_at=result.updated_at,
    )


def _with_rows(result: RequestResult, rows: int, total: int) -> RequestResult:
    if rows == total:
        return result
    note = f"leaderboard cut to {rows} of {total} rows to fit a queue message"
    reason = f"{result.selection_reason}; {note}" if result.selection_reason else note
    return result.model_copy(
        update={"leaderboard": result.leaderboard[:rows], "selection_reason": reason}
    )


def _cut(text: str | None, cap: int) -> str | None:
    if text is None or len(text) <= cap:
        return text
    return text[:cap] + " [cut]"


def _fits(result: RequestResult, encoding: Encoding, limit: int) -> bool:
    return _size(encode(result.model_dump_json(), encoding)) <= limit


def _size(text: str) -> int:
    return len(text.encode("utf-8"))
