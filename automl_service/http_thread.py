"""A standard-library HTTP server serving from a daemon thread (health and scoring)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from .logs import get_logger

log = get_logger(__name__)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def client_host(host: str) -> str:
    """The host a process on this machine uses to reach a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def local_url(host: str, port: int, path: str = "") -> str:
    """The URL a process on this host uses, for a server bound to ``host:port``."""
    return f"http://{client_host(host)}:{port}{path}"


class BackgroundHTTPServer:
    """Serves ``handler_class()`` on ``host:port`` from a daemon thread.

    ``start`` returns once the socket listens (port 0 picks a free port; see ``url``) and
    raises OSError when it cannot bind; ``stop`` is idempotent and waits for the thread.
    """

    thread_name = "http-server"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def bound_port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"the {self.thread_name} is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL a client on this host reaches the server at (after ``start``)."""
        return local_url(self.host, self.bound_port)

    def start(self) -> None:
        if self._server is not None:
            return
        server_class = _IPv6Server if ":" in self.host else ThreadingHTTPServer
        server = server_class((self.host, self.port), self.handler_class())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name=self.thread_name,
        )
        self._thread.start()
        log.info(f"{self.thread_name}.started", url=self.url)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        log.info(f"{self.thread_name}.stopped")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
