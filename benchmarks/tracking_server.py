"""A real ``mlflow server`` on 127.0.0.1 over a given store, and a counter of the HTTP
requests this process sends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def mlflow_server(
    backend_uri: str,
    artifacts: Path,
    log: Path,
    timeout: float = 180,
    workers: int = 1,
    port: int | None = None,
) -> Iterator[str]:
    """Start ``mlflow server`` with ``workers`` worker processes over ``backend_uri`` on
    ``port`` (default: a free one); yield its URL; stop it."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server",
             "--backend-store-uri", backend_uri,
             "--default-artifact-root", artifacts.as_uri(),
             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            _wait_healthy(url, proc, timeout, log)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"mlflow server at {url} not healthy after {timeout} s")


class RequestCounter:
    """Counts every HTTP request sent through ``requests`` (MLflow's REST client uses it)
    while active: the real request still goes out."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0  # spent waiting for answers, summed over threads
        self._lock = threading.Lock()

    @contextmanager
    def active(self) -> Iterator[RequestCounter]:
        original = requests.Session.send
        counter = self

        def send(session: requests.Session, request: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(session, request, **kwargs)
            finally:
                with counter._lock:
                    counter.count += 1
                    counter.seconds += time.perf_counter() - started

        requests.Session.send = send  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            requests.Session.send = original  # type: ignore[method-assign]
