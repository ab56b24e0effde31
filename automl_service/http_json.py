"""Replies of the service's HTTP servers (health and scoring) and the request handler that
sends them.

A server builds each answer as a ``Reply``; ``json_reply`` makes one from a JSON-ready
value (keys sorted). ``reply_handler`` makes the standard-library request handler: every
reply goes out with ``Content-Type``, ``Content-Length`` and ``Cache-Control: no-store``,
then any headers of its own. An answer that raises becomes the reply ``on_error`` makes of
the exception. Only GET is answered unless ``post`` is given; POST bodies are read whole up
to ``max_body_bytes``, and a bad ``Content-Length`` (400) or a larger body (413) is
refused unread, closing the connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Final

import structlog

JSON_TYPE: Final = "application/json"


@dataclass(frozen=True)
class Reply:
    """One answer: status, body and its content type, and headers beyond the usual ones."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()


def json_reply(status: int, body: object, *headers: tuple[str, str]) -> Reply:
    """``body`` as JSON (keys sorted) with ``status`` and any extra ``headers``."""
    return Reply(status, json.dumps(body, sort_keys=True).encode(), JSON_TYPE, headers)


def reply_handler(
    *,
    server_version: str,
    log: structlog.stdlib.BoundLogger,
    log_event: str,
    timeout: float,
    get: Callable[[str], Reply],
    on_error: Callable[[Exception], Reply],
    post: Callable[[str, bytes], Reply] | None = None,
    max_body_bytes: int = 0,
    protocol_version: str = "HTTP/1.0",
) -> type[BaseHTTPRequestHandler]:
    """A handler class answering GET with ``get(path)`` and, with ``post``, POST with
    ``post(path, body)``. ``timeout`` is how many seconds a client may take to send its
    request; each request line is logged at debug level as ``log_event``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._reply(lambda: get(self.path))

        def _reply(self, answer: Callable[[], Reply]) -> None:
            try:
                reply = answer()
            except Exception as exc:
                reply = on_error(exc)
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(log_event, line=format % args)

    Handler.server_version = server_version
    Handler.sys_version = ""
    Handler.protocol_version = protocol_version
    Handler.timeout = timeout
    # Headers and body go out as two writes: without TCP_NODELAY, a kept-alive connection
    # waits on the client's delayed ACK (40 ms) before the body's segment leaves.
    Handler.disable_nagle_algorithm = True
    if post is None:
        return Handler
    answer_post = post

    class BodyHandler(Handler):
        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                self._send(json_reply(HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"}))
                return
            if length > max_body_bytes:
                self.close_connection = True
                self._send(
                    json_reply(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        {"error": f"body is over {max_body_bytes} bytes"},
                    )
                )
                return
            body = self.rfile.read(length)
            self._reply(lambda: answer_post(self.path, body))

    return BodyHandler
