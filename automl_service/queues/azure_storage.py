"""Azure Storage Queue intake and outcome messages (Azurite locally).

Connection: an account URL with ``DefaultAzureCredential`` (a managed identity; the
client id of a user-assigned one from ``azure.client_id``), or a connection string for
development. Queues are created when missing if ``queue.create_queues`` allows it.

Every call is retried on transient storage errors (see ``automl_service.azure_retry``)
and then raises TransientError; authentication and missing-queue errors raise ConfigurationError; a
receipt that no longer holds its message raises StaleReceipt.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.exceptions import AzureError, ClientAuthenticationError, ResourceExistsError
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from ..azure_retry import STORAGE, RetryPolicy, call_with_retry, describe, error_code
from ..errors import (
    ConfigurationError,
    InvalidRequest,
    PermanentError,
    StaleReceipt,
    TransientError,
)
from ..logs import get_logger
from ..settings import QueueSettings
from .base import Message
from .encoding import (
    MAX_QUEUE_MESSAGE_BYTES,
    Encoding,
    EncodingSetting,
    PoisonRecord,
    decode,
    default_encoding,
    encode,
    fallback_failures,
    header_fits,
    parse_poison,
    poison_text,
    wire_size,
    with_header,
)
from .trim import fit_result

log = get_logger(__name__)

T = TypeVar("T")

#: Azure's bounds on a visibility timeout, in whole seconds.
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600
#: Client-side network timeouts: no call blocks for long.
CONNECTION_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 30
POISON_SUFFIX = "-poison"
_QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")


def service_client(q: QueueSettings, *, client_id: str | None = None) -> QueueServiceClient:
    """A service client from the queue settings: connection string if given, else account
    URL plus DefaultAzureCredential (``client_id`` names a user-assigned managed identity).
    The SDK's own retries are off; ours wrap each call. Raises ConfigurationError with
    neither."""
    options: dict[str, Any] = {
        "retry_total": 0,
        "connection_timeout": CONNECTION_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
    }
    if q.connection_string is not None:
        return QueueServiceClient.from_connection_string(
            q.connection_string.get_secret_value(), **options
        )
    if q.account_url:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=client_id)
        return QueueServiceClient(q.account_url, credential=credential, **options)
    raise ConfigurationError(
        "queue.kind azure_storage needs queue.account_url (managed identity) "
        "or queue.connection_string"
    )


def check_queue_name(name: str) -> None:
    """Raise ConfigurationError unless ``name`` is a valid Azure queue name."""
    if not _QUEUE_NAME.match(name) or "--" in name:
        raise ConfigurationError(
            f"invalid queue name {name!r}: 3-63 lowercase letters, digits and single hyphens, "
            "starting and ending with a letter or digit (the poison queue adds '-poison')"
        )


def _visibility(seconds: float, minimum: int) -> int:
    return max(minimum, min(MAX_VISIBILITY_SECONDS, math.ceil(seconds)))


def _receipt(pop_receipt: str, encoding: Encoding) -> str:
    # The receipt is opaque to the worker; carrying the encoding in it keeps hide() and
    # dead_letter() stateless across adapter instances.
    return f"{pop_receipt}|{'b64' if encoding == 'base64' else 'txt'}"


def _split_receipt(receipt: str) -> tuple[str, Encoding]:
    pop, _, tag = receipt.rpartition("|")
    if not pop:
        return receipt, "text"
    return pop, "base64" if tag == "b64" else "text"


class _Queues:
    """Queue clients by name, each created at most once when allowed."""

    def __init__(self, service: QueueServiceClient, create: bool, policy: RetryPolicy) -> None:
        self.service = service
        self.create = create
        self.policy = policy
        self._clients: dict[str, QueueClient] = {}
        self._ensured: set[str] = set()

    def client(self, name: str) -> QueueClient:
        if name not in self._clients:
            self._clients[name] = self.service.get_queue_client(name)
        return self._clients[name]

    def ensure(self, name: str) -> QueueClient:
        """The client for ``name``, the queue created first if missing and allowed."""
        client = self.client(name)
        if self.create and name not in self._ensured:
            self.call(f"create queue {name}", lambda: _create_if_missing(client))
            self._ensured.add(name)
        return client

    def call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return call_with_retry(what, fn, self.policy)
        except AzureError as exc:
            if self.create and error_code(exc) == "QueueNotFound":
                # A queue that disappeared (deleted, storage emulator restarted) is created
                # again on the next call, as it was at the first one.
                self._ensured.clear()
                raise TransientError(f"{what}: the queue is gone; creating it again") from exc
            raise permanent(what, exc) from exc


def permanent(what: str, exc: AzureError) -> Exception:
    """The service error for a storage error that retrying cannot fix."""
    text = f"{what}: {describe(exc)}"
    status = getattr(exc, "status_code", None)
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return ConfigurationError(f"{text} (check the credential and its role on the queue)")
    code = error_code(exc)
    if code == "QueueNotFound":
        return ConfigurationError(f"{text} (create it, or allow queue.create_queues)")
    if code in ("RequestBodyTooLarge", "MessageTooLarge") or status == 413:
        return InvalidRequest(text)
    return PermanentError(text)


def _create_if_missing(client: QueueClient) -> None:
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()


class AzureStorageQueue:
    """A work queue on Azure Storage, implementing ``queues.base.Queue``.

    ``receive`` hides messages for the visibility timeout; ``hide`` is ``update_message``
    (the new pop receipt is in the returned Message); ``delete`` only when finished.
    Real failures are counted in a header line the adapter writes in front of the
    producer's text (see ``encoding``); "not ready" re-checks only move the visibility
    time, so ``Message.failures`` stays 0 however large ``dequeue_count`` grows.
    ``dead_letter`` sends the producer's text and the reason to ``<name>-poison`` and
    deletes the message (the Azure Functions convention).
    """

    def __init__(
        self,
        service: QueueServiceClient,
        name: str,
        *,
        encoding: EncodingSetting = "auto",
        create_queues: bool = True,
        retry: RetryPolicy | None = None,
    ) -> None:
        check_queue_name(name + POISON_SUFFIX)
        self.name = name
        self.poison_name = name + POISON_SUFFIX
        self.encoding: EncodingSetting = encoding
        self._queues = _Queues(service, create_queues, retry or STORAGE)

    @property
    def _client(self) -> QueueClient:
        # Created on first use, so building the worker never needs the network.
        return self._queues.ensure(self.name)

    # Producer side ----------------------------------------------------------------------

    def send(self, body: str) -> str:
        """Enqueue ``body`` in the configured encoding ("auto" writes plain text); returns
        the message id. Raises InvalidRequest when it is over the 64 KiB limit."""
        encoding = default_encoding(self.encoding)
        size = wire_size(body, encoding)
        if size > MAX_QUEUE_MESSAGE_BYTES:
            raise InvalidRequest(
                f"message is {size} bytes encoded; the queue limit is {MAX_QUEUE_MESSAGE_BYTES}"
            )
        sent = self._queues.call(
            f"send to {self.name}", lambda: self._client.send_message(encode(body, encoding))
        )
        return str(sent.id)

    # Receiver side ----------------------------------------------------------------------

    def receive(self, max_messages: int, visibility_timeout: float) -> list[Message]:
        """Up to ``max_messages`` (at most 32) visible messages in one call, each hidden for
        ``visibility_timeout`` seconds (rounded up to whole seconds)."""
        count = max(1, min(32, max_messages))
        seconds = _visibility(visibility_timeout, 1)

        def one_page() -> list[QueueMessage]:
            pages = self._client.receive_messages(
                messages_per_page=count, max_messages=count, visibility_timeout=seconds
            ).by_page()
            return list(next(pages, []))

        raw = self._queues.call(f"receive from {self.name}", one_page)
        return [self._message(item) for item in raw]

    def _message(self, item: QueueMessage) -> Message:
        decoded = decode(str(item.content or ""), self.encoding)
        dequeue_count = int(item.dequeue_count or 0)
        inserted = item.inserted_on.timestamp() if item.inserted_on else time.time()
        return Message(
            message_id=str(item.id),
            body=decoded.text,
            receipt=_receipt(str(item.pop_receipt), decoded.encoding),
            dequeue_count=dequeue_count,
            failures=fallback_failures(decoded, dequeue_count),
            inserted_at=inserted,
        )

    def hide(self, message: Message, delay: float, *, failed: bool = False) -> Message:
        """Hide ``message`` for ``delay`` seconds (rounded up) under a new pop receipt.
        ``failed`` also rewrites the text with the failure count one higher; otherwise the
        text is left untouched. Raises StaleReceipt if the receipt no longer holds it."""
        pop, encoding = _split_receipt(message.receipt)
        failures = message.failures + 1 if failed else message.failures
        content: str | None = None
        if failed:
            if header_fits(message.body, encoding, failures):
                content = encode(with_header(message.body, failures), encoding)
            else:
                log.warning(
                    "queue.failures_from_receives",
                    message_id=message.message_id,
                    reason="too large to carry its failure count; counting receives",
                )
        seconds = _visibility(delay, 0)
        updated = self._update(message, pop, content, seconds, "hide")
        return Message(
            message_id=message.message_id,
            body=message.body,
            receipt=_receipt(str(updated.pop_receipt), encoding),
            dequeue_count=message.dequeue_count,
            failures=failures,
            inserted_at=message.inserted_at,
        )

    def delete(self, message: Message) -> None:
        """Remove a finished message. A message already gone is not an error; one held
        under another receipt raises StaleReceipt."""
        pop, _ = _split_receipt(message.receipt)
        self._delete(message.message_id, pop)

    def dead_letter(self, message: Message, reason: str) -> None:
        """Send the producer's text and ``reason`` to ``<name>-poison``, in the encoding it
        came in, then delete it here. The receipt is renewed first, so a receiver that lost
        the message raises StaleReceipt before anything reaches the poison queue."""
        pop, encoding = _split_receipt(message.receipt)
        held = self._update(message, pop, None, 30, "dead-letter")
        record = PoisonRecord(
            original=message.body,
            reason=reason,
            message_id=message.message_id,
            queue=self.name,
            dequeue_count=message.dequeue_count,
            failures=message.failures,
            dead_lettered_at=time.time(),
        )
        poison = self._queues.ensure(self.poison_name)
        text = poison_text(record, encoding)
        self._queues.call(f"send to {self.poison_name}", lambda: poison.send_message(text))
        self._delete(message.message_id, str(held.pop_receipt))
        log.warning(
            "queue.poisoned",
            queue=self.name,
            poison_queue=self.poison_name,
            message_id=message.message_id,
            reason=reason,
        )

    def poisoned(self, limit: int = 20) -> list[PoisonRecord]:
        """Up to ``limit`` (at most 32) records at the front of the poison queue, oldest
        first, peeked (nothing is hidden). A bare message there (put by another tool)
        comes back as a record with an empty reason."""
        client = self._queues.client(self.poison_name)
        what = f"peek {self.poison_name}"
        try:
            peeked = call_with_retry(
                what, lambda: client.peek_messages(max(1, min(32, limit))), self._queues.policy
            )
        except AzureError as exc:
            if error_code(exc) == "QueueNotFound":
                return []
            raise permanent(what, exc) from exc
        records = []
        for item in peeked:
            decoded = decode(str(item.content or ""), self.encoding)
            record = parse_poison(decoded.text) or PoisonRecord(
                original=decoded.text,
                reason="",
                message_id=str(item.id),
                queue=self.name,
                dequeue_count=int(item.dequeue_count or 0),
                failures=decoded.failures,
                dead_lettered_at=item.inserted_on.timestamp() if item.inserted_on else 0.0,
            )
            records.append(record)
        return records

    def visible_count(self) -> int:
        """Azure's approximate message count (hidden messages included)."""
        props = self._queues.call(
            f"properties of {self.name}", lambda: self._client.get_queue_properties()
        )
        return int(props.approximate_message_count or 0)

    def check(self) -> None:
        """Raise TransientError if storage cannot be reached, ConfigurationError if the
        credential is refused or the queue is missing."""
        self.visible_count()

    def wait_for_messages(self, seconds: float, stop: threading.Event) -> None:
        """Wait ``seconds`` (or until ``stop``): Azure Storage Queue tells nobody of a new
        message, and every poll is a billed transaction."""
        stop.wait(seconds)

    # Internals ------------------------------------------------------------------------

    def _update(
        self, message: Message, pop: str, content: str | None, seconds: int, why: str
    ) -> QueueMessage:
        what = f"{why} message {message.message_id} in {self.name}"
        try:
            return call_with_retry(
                what,
                lambda: self._client.update_message(
                    message.message_id, pop, content, visibility_timeout=seconds
                ),
                self._queues.policy,
            )
        except AzureError as exc:
            if error_code(exc) in ("PopReceiptMismatch", "MessageNotFound"):
                raise StaleReceipt(self._lost(message.message_id, exc)) from exc
            raise permanent(what, exc) from exc

    def _delete(self, message_id: str, pop: str) -> None:
        what = f"delete message {message_id} in {self.name}"
        try:
            call_with_retry(
                what,
                lambda: self._client.delete_message(message_id, pop),
                self._queues.policy,
            )
        except AzureError as exc:
            code = error_code(exc)
            if code == "MessageNotFound":
                return  # already gone: deleting is idempotent
            if code == "PopReceiptMismatch":
                raise StaleReceipt(self._lost(message_id, exc)) from exc
            raise permanent(what, exc) from exc

    def _lost(self, message_id: str, exc: AzureError) -> str:
        if error_code(exc) == "PopReceiptMismatch":
            return (
                f"message {message_id} in {self.name} is held under another receipt: its "
                "visibility ran out and it was received again"
            )
        return f"message {message_id} in {self.name} is gone (deleted or dead-lettered)"


class AzureResultSink:
    """Outcome messages on an Azure Storage queue, implementing ``queues.base.ResultSink``.

    The body is ``RequestResult.model_dump_json()``, written in the configured encoding
    ("auto" writes plain text). One over the 64 KiB limit is trimmed to fit (the
    leaderboard goes first), never dropped. With no queue named (neither ``reply_to`` nor a
    default) nothing is sent. Raises TransientError after retries, ConfigurationError when
    the credential is refused or the queue is missing and may not be created.
    """

    def __init__(
        self,
        service: QueueServiceClient,
        default_queue: str | None,
        *,
        encoding: EncodingSetting = "auto",
        create_queues: bool = True,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.default_queue = default_queue
        self.encoding: Encoding = default_encoding(encoding)
        self._queues = _Queues(service, create_queues, retry or STORAGE)

    def publish(self, queue_name: str | None, body: str) -> None:
        """Send ``body`` to ``queue_name`` (a request's ``reply_to``) or, when None, to the
        default result queue; with neither, do nothing."""
        name = queue_name or self.default_queue
        if name is None:
            return
        text = fit_result(body, self.encoding)
        client = self._queues.ensure(name)
        self._queues.call(f"send to {name}", lambda: client.send_message(text))
