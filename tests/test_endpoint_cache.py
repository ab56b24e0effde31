"""The scoring server's endpoint records from memory: read once while ``endpoints.db`` is
unchanged, read again as soon as anything, in this process or another, commits to it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from automl_service.engines.local.endpoint_cache import CachedEndpoints
from automl_service.engines.local.endpoint_store import (
    DeploymentRecord,
    DeploymentState,
    EndpointStore,
)
from automl_service.metrics import Goal
from automl_service.promotion import Verdict
from automl_service.sqlite_db import ChangeStamp


def ready(endpoint: str, version: str) -> DeploymentRecord:
    return DeploymentRecord(
        endpoint=endpoint,
        name=f"m-v{version}",
        model_name="m",
        model_version=version,
        model_uri=f"models:/m/{version}",
        metric="accuracy",
        metric_value=0.9,
        goal=Goal.MAXIMIZE,
        input_columns=("a",),
        request_id="r",
        state=DeploymentState.READY,
        created_at=float(version),
    )


def go_live(store: EndpointStore, endpoint: str, version: str) -> None:
    store.put_ready(ready(endpoint, version))
    store.switch(endpoint, f"m-v{version}", lambda live: Verdict(True, "newer"))


def test_records_are_read_once_until_a_change_is_committed(tmp_path: Path) -> None:
    writer = EndpointStore(tmp_path / "endpoints.db")
    cached = CachedEndpoints(EndpointStore(tmp_path / "endpoints.db"))
    assert cached.get("e") is None
    go_live(writer, "e", "1")
    first = cached.get("e")  # the commit is seen by the very next call
    assert first is not None and first.deployment == "m-v1"
    reads = cached.reads
    assert [cached.get("e") for _ in range(5)] == [first] * 5
    assert cached.reads == reads

    go_live(writer, "e", "2")
    second = cached.get("e")
    assert second is not None and second.deployment == "m-v2"
    assert second.previous_deployment == "m-v1"
    assert cached.reads == reads + 1
    cached.close()


def test_a_replaced_file_is_read_again(tmp_path: Path) -> None:
    """A records file put back from elsewhere (another inode) is read, not remembered."""
    path = tmp_path / "endpoints.db"
    go_live(EndpointStore(path), "e", "1")
    other = tmp_path / "other" / "endpoints.db"
    go_live(EndpointStore(other), "e", "7")
    cached = CachedEndpoints(EndpointStore(path))
    assert cached.get("e").deployment == "m-v1"  # type: ignore[union-attr]
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(other, tmp_path / "copy.db")
    os.replace(tmp_path / "copy.db", path)
    assert cached.get("e").deployment == "m-v7"  # type: ignore[union-attr]
    cached.close()


def test_a_missing_file_gives_no_stamp(tmp_path: Path) -> None:
    assert ChangeStamp(tmp_path / "nothing.db").current() is None


@pytest.mark.process
def test_a_switch_by_another_process_is_seen_by_the_next_call(tmp_path: Path) -> None:
    """A rollback in another process (another connection, another SQLite cache) reaches
    a cached reader on its next call, with no wait."""
    path = tmp_path / "endpoints.db"
    store = EndpointStore(path)
    go_live(store, "e", "1")
    go_live(store, "e", "2")
    cached = CachedEndpoints(EndpointStore(path))
    assert cached.get("e").deployment == "m-v2"  # type: ignore[union-attr]
    script = (
        "import sys; from pathlib import Path\n"
        "from automl_service.engines.local.endpoint_store import EndpointStore\n"
        "from automl_service.promotion import Verdict\n"
        "EndpointStore(Path(sys.argv[1])).switch("
        "'e', 'm-v1', lambda live: Verdict(True, 'back'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, env=env, timeout=120)
    assert cached.get("e").deployment == "m-v1"  # type: ignore[union-attr]
    cached.close()
