"""A request's identity follows its data: a fingerprint of the local files it reads.

``data_fingerprint`` hashes the content of every local file a request names (training,
validation and test data) with its size, so that the same message sent again after the
file changed is a new request, with a new job and a new model version, while a message
redelivered unchanged stays the same request. Bundled samples and remote references
(read by Azure ML, not here) add nothing; a file that cannot be read adds nothing either
(the request then fails on it with its own message). Blocking: reads each file once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol

from .policy import local_path
from .request import AutoMLRequest

CHUNK_BYTES = 1 << 20


def data_fingerprint(request: AutoMLRequest) -> str | None:
    """``sha256:<hex>`` over the request's local data files, or None when it reads none."""
    digest = hashlib.sha256()
    found = False
    for ref in request.data_refs():
        path = local_path(ref)
        if path is None:
            continue
        try:
            with path.open("rb") as handle:
                size = path.stat().st_size
                digest.update(f"{ref}\0{size}\0".encode())
                while chunk := handle.read(CHUNK_BYTES):
                    digest.update(chunk)
        except OSError:
            continue
        found = True
    return f"sha256:{digest.hexdigest()[:32]}" if found else None


def stamped(request: AutoMLRequest, fingerprint: str | None) -> AutoMLRequest:
    """``request`` carrying ``fingerprint``: without an explicit ``request_id`` its id is
    then derived from the content and the data together."""
    if fingerprint is None or request.data_fingerprint is not None:
        return request
    return request.model_copy(update={"data_fingerprint": fingerprint})


class FingerprintPins(Protocol):
    """Where the fingerprint first seen for each message is kept."""

    def pin_fingerprint(self, message_id: str, fingerprint: str) -> str:
        """The fingerprint first recorded for ``message_id``, recording ``fingerprint``
        if none was."""
        ...


def pinned_fingerprints(pins: FingerprintPins) -> Callable[[str, AutoMLRequest], str | None]:
    """The worker's fingerprint of a received request: the data's fingerprint as first
    seen for that message, so a message redelivered after its file changed stays the
    request it was."""

    def fingerprint(message_id: str, request: AutoMLRequest) -> str | None:
        found = data_fingerprint(request)
        return None if found is None else pins.pin_fingerprint(message_id, found)

    return fingerprint
