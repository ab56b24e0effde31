"""The workspace MLflow surface as strict as Azure ML's, in front of a real ``mlflow server``.

Azure ML serves MLflow's REST API on the workspace's tracking URI, with rules an
open-source server does not have. Each rule below cites its evidence; everything else is
forwarded to the real server on loopback.

- A bearer token is required: the workspace's MLflow is an Azure ML data-plane API
  (``https://<region>.api.azureml.ms/mlflow/v1.0/...``) authenticated with an Entra ID
  token; without one it answers 401.
- ``runs/search`` refuses pages of 1000 runs or more: "MaxResults = 25000 is invalid:
  MaxResults must be less than 1000." (400 ``BAD_REQUEST``, ``UserError``, reported in
  mlflow/mlflow#10694 against an Azure ML workspace).
- It throttles with 429 and ``Retry-After`` (``throttle``), as Azure ML's data plane does.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from .flaky_proxy import LoopbackServer, forward

#: Azure's limit: a page must hold fewer runs than this.
MAX_RESULTS_LIMIT = 1000


def _azure_error(status: int, code: str, message: str) -> bytes:
    """An error body in the shape the workspace's MLflow answers with."""
    return json.dumps(
        {
            "Error": {"Code": "UserError", "Message": message, "Details": []},
            "statusCode": status,
            "error_code": code,
        }
    ).encode()


class AzureMlflowFront(LoopbackServer):
    """Forwards MLflow REST calls to ``target`` under Azure's rules; ``requests`` keeps
    (time, method, path) of every call received."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.requests: list[tuple[float, str, str]] = []
        self.refused: list[str] = []
        self._throttle: list[str] = []
        self._lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with front._lock:
                    front.requests.append((time.monotonic(), self.command, self.path))
                    wait = front._throttle.pop(0) if front._throttle else None
                if wait is not None:
                    message = "Too many requests; retry after the time given"
                    self._reply(429, _azure_error(429, "TOO_MANY_REQUESTS", message),
                                {"Retry-After": wait})  # fmt: skip
                    return
                refusal = front._refusal(self.headers.get("Authorization"), self.path, body)
                if refusal is not None:
                    with front._lock:
                        front.refused.append(refusal[1])
                    self._reply(refusal[0], refusal[1].encode(), {})
                    return
                content_type = self.headers.get("Content-Type", "application/json")
                status, data = forward(front.target + self.path, self.command, body, content_type)
                self._reply(status, data, {})

            do_GET = do_POST = _serve

        self._serve_with(Handler)

    def _refusal(
        self, authorization: str | None, path: str, body: bytes | None
    ) -> tuple[int, str] | None:
        if not (authorization or "").startswith("Bearer ") or len(authorization or "") <= 7:
            return 401, _azure_error(401, "UNAUTHENTICATED", "No bearer token").decode()
        if path.split("?", 1)[0].endswith("/runs/search") and body:
            asked = int(json.loads(body).get("max_results") or 0)
            if asked >= MAX_RESULTS_LIMIT:
                message = (
                    f"MaxResults = {asked} is invalid: MaxResults must be less than "
                    f"{MAX_RESULTS_LIMIT}."
                )
                return 400, _azure_error(400, "BAD_REQUEST", message).decode()
        return None

    def throttle(self, *retry_after: str) -> None:
        """The next ``len(retry_after)`` calls are answered 429 with these Retry-After."""
        with self._lock:
            self._throttle.extend(retry_after)
