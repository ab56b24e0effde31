"""Azurite (the Azure Storage emulator) for tests: a queue service on 127.0.0.1 (and the
blob service, which ``azureml_fake.fixtures.azurite_blob`` starts over HTTPS).

``.ci/install-azurite.sh`` installs it under ``.ci/azurite``; ``AZURITE_QUEUE_BIN`` may name
another ``azurite-queue`` (``azurite-blob`` is looked for beside it, or in
``AZURITE_BLOB_BIN``). Without it the tests skip locally and fail in CI (``CI=true``).
Also here: a TCP proxy that misbehaves on purpose (resets connections, answers 503
ServerBusy) in front of Azurite, to exercise the retry layer against real sockets.

Test modules import helpers from here as well as naming it in ``pytest_plugins``, so its
asserts are left as they are: PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.queue import QueueServiceClient
from fixtures_retry import FAST

from automl_service.azure_retry import RetryPolicy
from automl_service.queues.azure_storage import AzureResultSink, AzureStorageQueue
from automl_service.queues.encoding import EncodingSetting

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret: the same in every Azurite).
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
#: Small retry budgets so failing paths end in seconds.
FAST_RETRY = FAST
_LISTENING = re.compile(r"listens on https?://[^:]+:(\d+)")


def connection_string(port: int, key: str = ACCOUNT_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"QueueEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


def find_azurite(service: str = "queue") -> str | None:
    """The ``azurite-<service>`` executable (``queue`` or ``blob``): $AZURITE_QUEUE_BIN
    (for the blob service: $AZURITE_BLOB_BIN, or beside $AZURITE_QUEUE_BIN), .ci/azurite,
    or on PATH."""
    name = f"azurite-{service}"
    queue_bin = os.environ.get("AZURITE_QUEUE_BIN")
    given = (
        [queue_bin]
        if service == "queue"
        else [
            os.environ.get(f"AZURITE_{service.upper()}_BIN"),
            str(Path(queue_bin).with_name(name)) if queue_bin else None,
        ]
    )
    candidates = [
        *given,
        str(ROOT / ".ci" / "azurite" / "node_modules" / ".bin" / name),
        shutil.which(name),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_azurite(service: str = "queue") -> str:
    """The executable, or skip (locally) / fail (CI) with what to run."""
    found = find_azurite(service)
    if found:
        return found
    reason = "Azurite not installed: run .ci/install-azurite.sh (or set AZURITE_QUEUE_BIN)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


class Azurite:
    """One azurite-queue (or azurite-blob: ``service="blob"``) process. ``port`` 0 picks a
    free port on first start; a restart keeps the port. With ``location`` data survives
    restarts; without, it is in memory. With ``tls`` (certificate and key PEM files) it
    serves HTTPS."""

    def __init__(
        self,
        executable: str,
        workdir: Path,
        *,
        location: Path | None = None,
        service: str = "queue",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.executable = executable
        self.workdir = workdir
        self.location = location
        self.service = service
        self.tls = tls
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    def start(self, timeout: float = 60.0) -> None:
        args = [
            self.executable,
            f"--{self.service}Host",
            "127.0.0.1",
            f"--{self.service}Port",
            str(self.port),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--loose",
        ]
        if self.tls is not None:
            args += ["--cert", str(self.tls[0]), "--key", str(self.tls[1])]
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.location)]
        else:
            args.append("--inMemoryPersistence")
            if self.service == "blob":  # blob contents in memory: a small cap for tests
                args += ["--extentMemoryLimit", "64"]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            args,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc, lines), daemon=True).start()
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            match = _LISTENING.search(line)
            if match:
                self.port = int(match.group(1))
                _wait_for_port(self.port, deadline)
                return
        self.stop()
        raise RuntimeError("Azurite did not start:\n" + "".join(seen[-20:]))

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    if proc.stdout is None:
        return
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def _wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"Azurite port {port} never accepted connections")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One in-memory Azurite queue service for the whole test session."""
    server = Azurite(require_azurite(), tmp_path_factory.mktemp("azurite"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def queue_name() -> str:
    """A fresh queue name, so tests sharing one Azurite never see each other's messages."""
    return "q-" + uuid.uuid4().hex[:16]


@pytest.fixture
def service(azurite: Azurite) -> Iterator[QueueServiceClient]:
    """A plain SDK client on the session's Azurite (what a producer would use)."""
    client = QueueServiceClient.from_connection_string(azurite.connection_string)
    try:
        yield client
    finally:
        client.close()


def make_queue(
    port: int,
    name: str,
    *,
    encoding: EncodingSetting = "auto",
    create_queues: bool = True,
    retry: RetryPolicy = FAST_RETRY,
    key: str = ACCOUNT_KEY,
) -> AzureStorageQueue:
    """An adapter on Azurite at ``port`` with the SDK's retries off (as in production)."""
    service = QueueServiceClient.from_connection_string(
        connection_string(port, key), retry_total=0, connection_timeout=5, read_timeout=10
    )
    return AzureStorageQueue(
        service, name, encoding=encoding, create_queues=create_queues, retry=retry
    )


def make_sink(
    port: int, default_queue: str | None, *, encoding: EncodingSetting = "auto"
) -> AzureResultSink:
    service = QueueServiceClient.from_connection_string(
        connection_string(port), retry_total=0, connection_timeout=5, read_timeout=10
    )
    return AzureResultSink(service, default_queue, encoding=encoding, retry=FAST_RETRY)


# A proxy that misbehaves ---------------------------------------------------------------

BUSY_RESPONSE = (
    b"HTTP/1.1 503 The server is busy.\r\n"
    b"x-ms-error-code: ServerBusy\r\n"
    b"Content-Type: application/xml\r\n"
    b"Content-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)


class FlakyProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target_port``. Each new connection takes the
    next action from ``script`` ("reset": close with RST; "busy": answer 503 ServerBusy
    and close; "forward": relay both ways); once the script is spent, ``after`` applies."""

    def __init__(self, target_port: int, script: list[str], after: str = "forward") -> None:
        self.target_port = target_port
        self.script = list(script)
        self.after = after
        self.connections = 0
        self.times: list[float] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._server.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self.times.append(time.monotonic())
            action = self.script.pop(0) if self.script else self.after
            threading.Thread(target=self._handle, args=(conn, action), daemon=True).start()

    def _handle(self, conn: socket.socket, action: str) -> None:
        if action == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        if action == "busy":
            conn.settimeout(2)
            try:
                conn.recv(65536)  # the request head; the answer does not depend on it
                conn.sendall(BUSY_RESPONSE)
            except OSError:
                pass
            conn.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            conn.close()
            return
        for src, dst in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=_relay, args=(src, dst), daemon=True).start()

    def close(self) -> None:
        self._stopped.set()
        self._server.close()
        self._thread.join(timeout=2)


def _relay(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
