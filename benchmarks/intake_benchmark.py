"""Intake throughput: messages per second received, validated and settled (deleted).

Runs against Azurite (started here from .ci/azurite unless --connection-string names a
running one) and the local SQLite queue, and prints a markdown table.

    python benchmarks/intake_benchmark.py --messages 500 --batch 4 --batch 32
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.storage.queue import QueueServiceClient

from automl_service.logs import configure_logging
from automl_service.queues.azure_storage import AzureStorageQueue
from automl_service.queues.base import Queue
from automl_service.request import parse_request
from automl_service.settings import LoggingSettings

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    queue: str
    batch: int
    messages: int
    send_per_second: float
    settle_per_second: float


def request_body(i: int) -> str:
    return json.dumps(
        {
            "request_id": f"bench-{i:06d}",
            "task": "classification",
            "training_data": "sample:iris",
            "target_column_name": "target",
            "limits": {"timeout_seconds": 60},
        }
    )


def measure(label: str, queue: Queue, messages: int, batch: int) -> Row:
    """Send ``messages`` requests, then receive, parse and delete them all, timed apart."""
    started = time.perf_counter()
    for i in range(messages):
        queue.send(request_body(i))
    sent = time.perf_counter() - started

    settled = 0
    started = time.perf_counter()
    while settled < messages:
        got = queue.receive(batch, 60)
        if not got:
            raise RuntimeError(f"{label}: queue ran dry after {settled} of {messages}")
        for message in got:
            parse_request(message.body)
            queue.delete(message)
        settled += len(got)
    took = time.perf_counter() - started
    return Row(label, batch, messages, messages / sent, messages / took)


@contextmanager
def azurite_connection(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    # The launcher the tests use: one way to start Azurite.
    sys.path.insert(0, str(ROOT / "tests"))
    launcher: Any = importlib.import_module("fixtures_azurite")
    executable = launcher.find_azurite()
    if executable is None:
        raise SystemExit("Azurite not installed: run .ci/install-azurite.sh")
    with tempfile.TemporaryDirectory() as tmp:
        server = launcher.Azurite(executable, Path(tmp))
        server.start()
        try:
            yield server.connection_string
        finally:
            server.stop()


def table(rows: list[Row]) -> str:
    lines = [
        "| queue | batch | messages | sent msg/s | received+validated+deleted msg/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.queue} | {r.batch} | {r.messages} | {r.send_per_second:,.0f} "
            f"| {r.settle_per_second:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--batch", type=int, action="append", help="receive batch sizes")
    parser.add_argument("--connection-string", help="use this Azurite/Storage account")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args(argv)
    configure_logging(LoggingSettings(level="warning"))
    batches: list[int] = args.batch or [4, 32]

    rows: list[Row] = []
    with azurite_connection(args.connection_string) as conn:
        service = QueueServiceClient.from_connection_string(conn, retry_total=0)
        for batch in batches:
            name = "bench-" + uuid.uuid4().hex[:12]
            queue: Queue = AzureStorageQueue(service, name)
            rows.append(measure("azure_storage (Azurite)", queue, args.messages, batch))
            service.delete_queue(name)

    if not args.skip_sqlite:
        sqlite_queue: Callable[[Path, str], Queue] | None
        try:
            from automl_service.queues.sqlite import SqliteQueue

            sqlite_queue = SqliteQueue
        except ImportError:
            sqlite_queue = None
        if sqlite_queue is not None:
            with tempfile.TemporaryDirectory() as tmp:
                for batch in batches:
                    queue = sqlite_queue(Path(tmp) / "queue.db", f"bench-{batch}")
                    rows.append(measure("sqlite", queue, args.messages, batch))

    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
