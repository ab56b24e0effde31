"""Fixtures for the service as a process: real `python -m automl_service` commands with
settings from the environment, real HTTP on 127.0.0.1, and clean-up of what they started.

Test modules import helpers from here as well as naming it in ``pytest_plugins``, so its
asserts are left as they are: PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from automl_service.engines.local.layout import JobDir

#: A secret that must never come out of the service (logs, results, reports, health).
CANARY = "CaNaRy0SeCrEt0KeY0x9Q7Zw3/Vb2+Lm4Np=="
CANARY_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=https;AccountName=canaryaccount;"
    f"AccountKey={CANARY};EndpointSuffix=core.windows.net"
)

#: Process start-up imports MLflow and friends; on 2 shared cores that can take a while.
START_TIMEOUT = 120.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """(status, body) of ``GET url``; status 0 when nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test on timeout."""
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` parsed as a JSON object (fails on a line that is not one)."""
    lines = []
    for line in text.splitlines():
        if line.strip():
            try:
                parsed = json.loads(line)
            except ValueError:
                pytest.fail(f"not a JSON line: {line!r}")
            assert isinstance(parsed, dict), line
            lines.append(parsed)
    return lines


class Service:
    """Runs the service's commands in child processes against one data folder."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.log_file = tmp_path / "worker.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOML_SERVICE_")}
        self.env.update(
            AUTOML_SERVICE_LOCAL__DATA_DIR=str(self.data_dir),
            AUTOML_SERVICE_QUEUE__CONNECTION_STRING=CANARY_CONNECTION_STRING,
            AUTOML_SERVICE_WORKER__POLL_INTERVAL_SECONDS="0.2",
            AUTOML_SERVICE_WORKER__MAX_POLL_INTERVAL_SECONDS="0.5",
            AUTOML_SERVICE_WORKER__RECHECK_SECONDS="0.5",
            AUTOML_SERVICE_WORKER__MAX_RECHECK_SECONDS="1",
            AUTOML_SERVICE_WORKER__VISIBILITY_TIMEOUT_SECONDS="5",
            AUTOML_SERVICE_WORKER__SHUTDOWN_GRACE_SECONDS="10",
            AUTOML_SERVICE_LOGGING__FORMAT="json",
        )
        self.started: list[subprocess.Popen[bytes]] = []
        self.outputs: list[str] = []  # every command's output, for the canary search

    def run(
        self, *args: str, timeout: float = 180.0, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``automl-service ARGS`` to its end."""
        done = subprocess.run(
            [sys.executable, "-m", "automl_service", *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=timeout,
        )
        self.outputs.extend([done.stdout, done.stderr])
        return done

    def start(
        self, *args: str, log: Path | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``automl-service ARGS`` in the background, output appended to ``log``."""
        with (log or self.log_file).open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "automl_service", *args],
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started.append(process)
        return process

    def stop(
        self,
        process: subprocess.Popen[bytes],
        timeout: float = 60.0,
        signum: signal.Signals = signal.SIGTERM,
    ) -> tuple[int, float]:
        """Signal ``process``; its exit code and how many seconds it took to exit."""
        began = time.monotonic()
        process.send_signal(signum)
        code = process.wait(timeout=timeout)
        return code, time.monotonic() - began

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        jobs = self.data_dir / "jobs"
        for job_path in jobs.glob("*") if jobs.exists() else []:
            pid = JobDir(job_path).spawned_pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)  # the trainer leads its own session


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A Service on a fresh data folder; processes and trainers it started are killed."""
    made = Service(tmp_path)
    yield made
    made.close()
