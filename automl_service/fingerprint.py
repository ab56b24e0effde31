"""A request's identity follows its data: a fingerprint of the data it reads.

``data_fingerprint`` hashes the content of every local file a request names (training,
validation and test data) with its size, and the version of every remote reference the
backend can tell one of (``RemoteVersions``: on Azure, the version ``@latest`` of a data
asset stands for, and a datastore path's ETags), so that the same message sent again
after the data changed is a new request, with a new job and a new model version, while a
message redelivered unchanged stays the same request. Bundled samples and references
whose version is unknown add nothing; a file that cannot be read adds nothing either (the
request then fails on it with its own message). Blocking: reads each file once, and asks
for each remote version once per message (the first fingerprint of a message is pinned
and then reused).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol

from .policy import local_path
from .request import AutoMLRequest

CHUNK_BYTES = 1 << 20


#: The version of a remote data reference (e.g. ``azureml:sales:7`` for
#: ``azureml:sales@latest``, ``etag:0x8DC...`` for a datastore file), or None when the
#: backend cannot tell one.
RemoteVersions = Callable[[str], str | None]


def data_fingerprint(
    request: AutoMLRequest, remote_versions: RemoteVersions | None = None
) -> str | None:
    """``sha256:<hex>`` over the request's local data files and the versions of its
    remote references, or None when it has neither."""
    digest = hashlib.sha256()
    found = False
    for ref in request.data_refs():
        path = local_path(ref)
        if path is None:
            version = remote_versions(ref) if remote_versions is not None else None
            if version is not None:
                digest.update(f"{ref}\0{version}\0".encode())
                found = True
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

    def pinned_fingerprint(self, message_id: str) -> str | None:
        """The fingerprint recorded for ``message_id``, if any."""
        ...

    def pin_fingerprint(self, message_id: str, fingerprint: str) -> str:
        """The fingerprint first recorded for ``message_id``, recording ``fingerprint``
        if none was."""
        ...


def pinned_fingerprints(
    pins: FingerprintPins, remote_versions: RemoteVersions | None = None
) -> Callable[[str, AutoMLRequest], str | None]:
    """The worker's fingerprint of a received request: the data's fingerprint as first
    seen for that message, so a message redelivered after its data changed stays the
    request it was (and its files are not read again, nor its versions asked, each time
    it comes back)."""

    def fingerprint(message_id: str, request: AutoMLRequest) -> str | None:
        pinned = pins.pinned_fingerprint(message_id)
        if pinned is not None:
            return pinned
        found = data_fingerprint(request, remote_versions)
        return None if found is None else pins.pin_fingerprint(message_id, found)

    return fingerprint
