"""An HTTP proxy on loopback that fails a seeded random fraction of requests on purpose.

Put in front of Azurite (or any plain-HTTP service), it forwards each request (method,
path, headers and body unchanged) to the target and relays the answer, except that a
``fault_rate`` fraction of requests, drawn from a random generator seeded with ``seed``,
gets one of ``FAULTS`` instead (chosen alike):

- ``busy``: 503 with ``x-ms-error-code: ServerBusy``, as Azure Storage answers when throttling;
- ``429`` and ``503``: that status with ``Retry-After``;
- ``reset``: the connection is reset (RST) before the request reaches the target;
- ``reset_after``: the request is forwarded and takes effect, then the connection is reset
  instead of answering (the client cannot tell whether it took effect).

Faults are drawn per request, not per connection, so they fire on pooled keep-alive
connections too. Azure Storage SharedKey signatures do not cover the host and port, so
requests signed for the proxy's address are valid at the target's.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("busy", "429", "503", "reset", "reset_after")
#: Headers about one hop that are not passed on.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
BUSY_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
    b"<Message>The server is busy.</Message></Error>"
)


class ChaosProxy:
    """``start()`` it, point clients at ``url`` (or ``port``), read ``injected``, ``stop()``."""

    def __init__(
        self, target_port: int, *, fault_rate: float, seed: int = 0, retry_after: int = 1
    ) -> None:
        self.target_port = target_port
        self.fault_rate = fault_rate
        self.retry_after = retry_after
        #: Requests seen, and faults injected by kind.
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the proxy first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChaosProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server = _Server(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def draw(self) -> str | None:
        """The fault for the next request, or None to forward it."""
        with self._lock:
            self.requests += 1
            if self._rng.random() >= self.fault_rate:
                return None
            kind = self._rng.choice(FAULTS)
            self.injected[kind] += 1
            return kind

    def forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send the request to the target; its status, reason, headers and body."""
        connection = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=60)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            connection.endheaders(body or None)
            answer = connection.getresponse()
            data = answer.read()
            return answer.status, answer.reason, answer.getheaders(), data
        finally:
            connection.close()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Tracebacks, except for a socket error: a client gone mid-request (reset, killed)."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: ChaosProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = self.owner.draw()
        if fault == "reset":
            self._reset()
            return
        if fault == "busy":
            self._answer(503, "Server Busy", [("x-ms-error-code", "ServerBusy")], BUSY_BODY)
            return
        if fault in ("429", "503"):
            retry = [("Retry-After", str(self.owner.retry_after))]
            self._answer(int(fault), "Injected", retry, b"")
            return
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        try:
            status, reason, answer_headers, data = self.owner.forward(
                self.command, self.path, headers, body
            )
        except OSError:
            self._reset()  # the target is down: the client sees what it would see
            return
        if fault == "reset_after":
            self._reset()
            return
        kept = [
            (k, v)
            for k, v in answer_headers
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"
        ]
        self._answer(status, reason, kept, data)

    def _answer(
        self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        self.send_response(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        """Close with RST instead of FIN: the client sees a reset connection."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    do_GET = do_PUT = do_POST = do_DELETE = _serve
