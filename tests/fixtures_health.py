"""Fixtures for the health endpoints: real servers on loopback and a real result store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from automl_service.health import HealthServer
from automl_service.result_store import SqliteResultStore
from automl_service.stats import WorkerStats


@pytest.fixture
def result_store(tmp_path: Path) -> SqliteResultStore:
    return SqliteResultStore(tmp_path / "results.db")


StartHealth = Callable[..., HealthServer]


@pytest.fixture
def start_health(result_store: SqliteResultStore) -> Iterator[StartHealth]:
    """Starts HealthServers on 127.0.0.1 with a free port; stops them all afterwards."""
    started: list[HealthServer] = []

    def start(
        stats: WorkerStats | None = None,
        readiness: Callable[[], dict[str, str | None]] | None = None,
        **kwargs: Any,
    ) -> HealthServer:
        server = HealthServer(
            stats or WorkerStats(),
            readiness or (lambda: {}),
            kwargs.pop("results", result_store),
            "127.0.0.1",
            0,
            **kwargs,
        )
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
