"""How message text is written on Azure Storage queues: pure functions, no I/O.

Producers write plain text or base64 (Azure Functions and Logic Apps write base64).
``decode`` tells them apart ("auto") or follows a configured encoding; ``encode`` writes
text back the same way.

The worker's own count of real failures travels inside the message, as one header line in
front of the producer's text (``automl-service-failures: N``), written only when an
attempt really failed. "Not ready yet" re-checks never rewrite the message, so a healthy
long job keeps the producer's text untouched however often it is re-checked, and its
failure count stays 0 while the service's dequeue count grows. The header is stripped on
receive and never reaches a request parser, the poison queue or a result.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Literal

#: The largest message text Azure Storage accepts, in bytes of UTF-8 (as sent).
MAX_QUEUE_MESSAGE_BYTES = 64 * 1024

Encoding = Literal["text", "base64"]
EncodingSetting = Literal["auto", "text", "base64"]

FAILURES_HEADER = "automl-service-failures: "
#: Room the failures header can take, encoded as base64 (the larger case).
HEADER_ROOM = (len(FAILURES_HEADER) + 12) * 4 // 3 + 4

_BASE64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


@dataclass(frozen=True)
class Decoded:
    """The producer's text, how it was encoded, and the failures recorded beside it."""

    text: str
    encoding: Encoding
    failures: int
    has_header: bool


def looks_base64(raw: str) -> bool:
    """True when ``raw`` is strict, padded base64 of UTF-8 text (never true for JSON)."""
    if not raw or len(raw) % 4 or not _BASE64.match(raw):
        return False
    try:
        base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return True


def decode(raw: str, setting: EncodingSetting) -> Decoded:
    """The producer's text of a received message, with any failures header removed.

    ``setting`` "auto" decodes base64 when the text is strict base64 of UTF-8 and takes
    everything else as plain text; "base64" text that does not decode is returned as it
    is, so the request parser rejects it (and the message is poisoned at once).
    """
    encoding: Encoding = "text"
    text = raw
    if setting == "base64" or (setting == "auto" and looks_base64(raw)):
        try:
            text = base64.b64decode(raw, validate=True).decode("utf-8")
            encoding = "base64"
        except (binascii.Error, UnicodeDecodeError):
            text = raw
    failures, text, has_header = split_header(text)
    return Decoded(text=text, encoding=encoding, failures=failures, has_header=has_header)


def encode(text: str, encoding: Encoding) -> str:
    """``text`` as it goes on the wire in ``encoding``."""
    if encoding == "base64":
        return base64.b64encode(text.encode("utf-8")).decode("ascii")
    return text


def wire_size(text: str, encoding: Encoding) -> int:
    """Bytes ``text`` takes on the queue once encoded."""
    return len(encode(text, encoding).encode("utf-8"))


def default_encoding(setting: EncodingSetting) -> Encoding:
    """How new messages are written: base64 only when configured so."""
    return "base64" if setting == "base64" else "text"


def with_header(text: str, failures: int) -> str:
    """``text`` carrying a failures count; ``split_header`` undoes it."""
    return f"{FAILURES_HEADER}{failures}\n{text}"


def split_header(text: str) -> tuple[int, str, bool]:
    """(failures, producer's text, whether a header was there)."""
    if not text.startswith(FAILURES_HEADER):
        return 0, text, False
    line, sep, rest = text.partition("\n")
    count = line[len(FAILURES_HEADER) :].strip()
    if not sep or not count.isdigit():
        return 0, text, False
    return int(count), rest, True


def header_fits(text: str, encoding: Encoding, failures: int) -> bool:
    """Whether ``text`` with a failures header still fits in one message."""
    return wire_size(with_header(text, failures), encoding) <= MAX_QUEUE_MESSAGE_BYTES


def fallback_failures(decoded: Decoded, dequeue_count: int) -> int:
    """Failures of a message too large to carry the header: every earlier receive is
    counted as a failure, so it still reaches the poison queue in bounded time."""
    if decoded.has_header or header_fits(decoded.text, decoded.encoding, 10**9):
        return decoded.failures
    return max(0, dequeue_count - 1)


# Poison records ---------------------------------------------------------------------


@dataclass(frozen=True)
class PoisonRecord:
    """What goes to ``<queue>-poison``: the producer's text and why it failed."""

    original: str
    reason: str
    message_id: str
    queue: str
    dequeue_count: int
    failures: int
    dead_lettered_at: float

    def to_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False)


def poison_text(record: PoisonRecord, encoding: Encoding) -> str:
    """The poison message's text as sent: the JSON record, its reason cut to fit; the
    producer's text alone (the Azure Functions form) when even that does not fit."""
    reason = record.reason
    while True:
        candidate = PoisonRecord(**{**record.__dict__, "reason": reason})
        wire = encode(candidate.to_json(), encoding)
        if len(wire.encode("utf-8")) <= MAX_QUEUE_MESSAGE_BYTES:
            return wire
        if len(reason) <= 200:
            return encode(record.original, encoding)
        reason = reason[: len(reason) // 2] + " [cut]"


def parse_poison(text: str) -> PoisonRecord | None:
    """A poison record from a decoded poison message, or None for a bare original."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) != set(PoisonRecord.__dataclass_fields__):
            return None
        return PoisonRecord(**data)
    except (ValueError, TypeError):
        return None
