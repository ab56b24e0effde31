"""An HTTP proxy on loopback that fails the first requests on purpose, then forwards."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def forward(url: str, method: str, body: bytes | None, content_type: str) -> tuple[int, bytes]:
    """The status and body a server answers a request with, error statuses included."""
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (an ephemeral port) serving ``handler``."""

    def _serve_with(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class FlakyProxy(LoopbackServer):
    """Answers the first requests with the given statuses (with ``Retry-After``), then
    forwards every request to ``target``."""

    def __init__(self, target: str, failures: list[int], retry_after: str = "1") -> None:
        self.target = target.rstrip("/")
        self.failures = list(failures)
        self.retry_after = retry_after
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                with proxy._lock:
                    proxy.requests += 1
                    failure = proxy.failures.pop(0) if proxy.failures else None
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if failure is not None:
                    self.send_response(failure)
                    self.send_header("Retry-After", proxy.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                content_type = self.headers.get("Content-Type", "application/json")
                status, data = forward(proxy.target + self.path, self.command, body, content_type)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        self._serve_with(Handler)
