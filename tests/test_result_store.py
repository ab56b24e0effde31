"""The SQLite result store against a real file."""

from __future__ import annotations

from pathlib import Path

from automl_service.queues.sqlite import SqliteQueue
from automl_service.result_store import SqliteResultStore
from automl_service.results import LeaderboardRow, RequestResult, RequestState, ResultStore


def test_round_trip(tmp_path: Path) -> None:
    """A stored result comes back equal, nested leaderboard included."""
    store: ResultStore = SqliteResultStore(tmp_path / "r.db")
    result = RequestResult(
        request_id="req-1",
        state=RequestState.SUCCEEDED,
        best_value=0.93,
        leaderboard=[LeaderboardRow(run_id="r1", algorithm="lgbm", value=0.93)],
        model_version="3",
    )
    store.put(result)
    assert store.get("req-1") == result
    assert store.get("missing") is None


def test_latest_wins_and_older_is_ignored(tmp_path: Path) -> None:
    """put keeps the newest result per request; an older updated_at never overwrites it."""
    store = SqliteResultStore(tmp_path / "r.db")
    first = RequestResult(request_id="a", state=RequestState.TRAINING, updated_at=100.0)
    second = first.model_copy(update={"state": RequestState.SUCCEEDED, "updated_at": 200.0})
    store.put(first)
    store.put(second)
    store.put(first)
    got = store.get("a")
    assert got is not None
    assert got.state is RequestState.SUCCEEDED
    assert store.counts() == {RequestState.SUCCEEDED: 1}


def test_recent_newest_first(tmp_path: Path) -> None:
    """recent lists results by updated_at, newest first, limited, optionally by state."""
    store = SqliteResultStore(tmp_path / "r.db")
    for i, state in enumerate(
        [RequestState.FAILED, RequestState.SUCCEEDED, RequestState.TRAINING, RequestState.FAILED]
    ):
        store.put(RequestResult(request_id=f"r{i}", state=state, updated_at=float(i)))
    assert [r.request_id for r in store.recent(3)] == ["r3", "r2", "r1"]
    assert [r.request_id for r in store.recent(state=RequestState.FAILED)] == ["r3", "r0"]


def test_shares_the_queue_file(tmp_path: Path) -> None:
    """The store and the queue can live in one file without disturbing each other."""
    path = tmp_path / "service.db"
    queue = SqliteQueue(path, "q")
    store = SqliteResultStore(path)
    queue.send("x")
    store.put(RequestResult(request_id="a", state=RequestState.RECEIVED))
    assert queue.visible_count() == 1
    assert [r.request_id for r in SqliteResultStore(path).recent()] == ["a"]
