"""The SQLite queue against real files: visibility, receipts, poison, several processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_worker import FakeClock

from automl_service.errors import StaleReceipt, TransientError
from automl_service.queues.base import Queue
from automl_service.queues.sqlite import SqliteQueue


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(tmp_path: Path, clock: FakeClock) -> SqliteQueue:
    return SqliteQueue(tmp_path / "queue.db", "requests", clock=clock)


def test_is_a_queue(queue: SqliteQueue) -> None:
    """SqliteQueue satisfies the Queue protocol the worker depends on."""
    typed: Queue = queue
    assert typed.name == "requests"


def test_send_receive_delete(queue: SqliteQueue) -> None:
    """A sent message is received once with its body and counts, then gone after delete."""
    message_id = queue.send('{"a": 1}')
    assert queue.visible_count() == 1
    [message] = queue.receive(5, 30)
    assert (message.message_id, message.body) == (message_id, '{"a": 1}')
    assert (message.dequeue_count, message.failures) == (1, 0)
    assert queue.visible_count() == 0
    assert queue.receive(5, 30) == []
    queue.delete(message)
    queue.delete(message)  # already gone: not an error
    assert queue.visible_count() == 0


def test_receive_is_oldest_first_and_bounded(queue: SqliteQueue, clock: FakeClock) -> None:
    """Receive returns at most max_messages, oldest first."""
    ids = []
    for i in range(5):
        ids.append(queue.send(str(i)))
        clock.now += 0.001
    got = queue.receive(3, 30)
    assert [m.message_id for m in got] == ids[:3]
    assert [m.body for m in queue.receive(10, 30)] == ["3", "4"]


def test_visibility_expiry_brings_message_back(queue: SqliteQueue, clock: FakeClock) -> None:
    """A message received and not deleted comes back after its timeout, with a new receipt."""
    queue.send("x")
    [first] = queue.receive(1, 10)
    clock.now += 9.9
    assert queue.receive(1, 10) == []
    clock.now += 0.2
    [again] = queue.receive(1, 10)
    assert again.message_id == first.message_id
    assert again.receipt != first.receipt
    assert again.dequeue_count == 2


def test_visibility_expiry_in_real_time(tmp_path: Path) -> None:
    """With the wall clock, a message hidden for 0.2 s is receivable again after it."""
    queue = SqliteQueue(tmp_path / "q.db", "q")
    queue.send("x")
    assert len(queue.receive(1, 0.2)) == 1
    assert queue.receive(1, 0.2) == []
    time.sleep(0.3)
    assert len(queue.receive(1, 0.2)) == 1


def test_hide_counts_failures_only_when_failed(queue: SqliteQueue, clock: FakeClock) -> None:
    """hide() renews the receipt; failed=True adds to failures, never to dequeue_count."""
    queue.send("x")
    [m] = queue.receive(1, 10)
    m2 = queue.hide(m, 60)
    assert (m2.dequeue_count, m2.failures) == (1, 0)
    assert m2.receipt != m.receipt
    m3 = queue.hide(m2, 60, failed=True)
    assert (m3.dequeue_count, m3.failures) == (1, 1)
    clock.now += 30
    assert queue.receive(1, 10) == []  # the hide replaced the 10 s timeout
    clock.now += 31
    [back] = queue.receive(1, 10)
    assert (back.dequeue_count, back.failures) == (2, 1)


def test_stale_receipt_raises(queue: SqliteQueue, clock: FakeClock) -> None:
    """After another receiver took the message, hide/delete/dead_letter with the old
    receipt raise StaleReceipt and change nothing."""
    queue.send("x")
    [old] = queue.receive(1, 5)
    clock.now += 6
    [new] = queue.receive(1, 5)
    with pytest.raises(StaleReceipt, match="another receipt"):
        queue.hide(old, 60)
    with pytest.raises(StaleReceipt):
        queue.delete(old)
    with pytest.raises(StaleReceipt):
        queue.dead_letter(old, "boom")
    assert queue.poisoned() == []
    queue.delete(new)
    with pytest.raises(StaleReceipt, match="deleted"):
        queue.hide(new, 1)


def test_old_receipt_still_valid_until_received_again(queue: SqliteQueue, clock: FakeClock) -> None:
    """As in Azure, an expired but not re-received message can still be deleted by its
    receipt."""
    queue.send("x")
    [m] = queue.receive(1, 5)
    clock.now += 60
    queue.delete(m)
    assert queue.visible_count() == 0
    assert queue.receive(1, 5) == []


def test_dead_letter_keeps_body_reason_and_counts(queue: SqliteQueue, clock: FakeClock) -> None:
    """dead_letter moves the message to poison with its original body, reason and counts."""
    message_id = queue.send("not json {")
    [m] = queue.receive(1, 5)
    m = queue.hide(m, 0, failed=True)
    [m] = queue.receive(1, 5)
    clock.now += 1
    queue.dead_letter(m, "message is not JSON")
    queue.dead_letter(m, "message is not JSON")  # idempotent
    assert queue.visible_count() == 0
    clock.now += 100
    assert queue.receive(1, 5) == []
    [entry] = queue.poisoned()
    assert entry.message_id == message_id
    assert entry.body == "not json {"
    assert entry.reason == "message is not JSON"
    assert (entry.dequeue_count, entry.failures) == (2, 1)
    assert entry.poisoned_at == 1_000_001.0
    with pytest.raises(StaleReceipt, match="poison"):
        queue.delete(m)


def test_poisoned_newest_first_and_limited(queue: SqliteQueue, clock: FakeClock) -> None:
    """poisoned(limit) lists the newest entries first and at most limit of them."""
    for i in range(3):
        queue.send(str(i))
        [m] = queue.receive(1, 5)
        clock.now += 1
        queue.dead_letter(m, f"reason {i}")
    assert [e.reason for e in queue.poisoned(2)] == ["reason 2", "reason 1"]


def test_queues_sharing_a_file_are_separate(tmp_path: Path) -> None:
    """Two queue names in one file never see each other's messages."""
    a = SqliteQueue(tmp_path / "q.db", "a")
    b = SqliteQueue(tmp_path / "q.db", "b")
    a.send("for a")
    assert b.receive(10, 5) == []
    assert [m.body for m in a.receive(10, 5)] == ["for a"]


def test_durable_across_instances(tmp_path: Path) -> None:
    """Messages survive closing and reopening the queue, and the file uses WAL."""
    SqliteQueue(tmp_path / "q.db", "q").send("kept")
    assert [m.body for m in SqliteQueue(tmp_path / "q.db", "q").receive(1, 5)] == ["kept"]
    conn = sqlite3.connect(tmp_path / "q.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_delayed_send(queue: SqliteQueue, clock: FakeClock) -> None:
    """A message sent with a delay is invisible until the delay passes."""
    queue.send("later", delay=10)
    assert queue.visible_count() == 0
    clock.now += 10
    assert queue.visible_count() == 1


def _drain(path: str, out: multiprocessing.Queue[list[str]]) -> None:
    queue = SqliteQueue(Path(path), "q")
    got: list[str] = []
    empty = 0
    while empty < 3:
        batch = queue.receive(3, 300)
        if not batch:
            empty += 1
            time.sleep(0.01)
            continue
        empty = 0
        got.extend(m.body for m in batch)
    out.put(got)


@pytest.mark.process
def test_concurrent_receivers_never_share_a_message(tmp_path: Path) -> None:
    """Three processes receiving from one file together get every message exactly once."""
    path = tmp_path / "q.db"
    queue = SqliteQueue(path, "q")
    bodies = [str(i) for i in range(300)]
    for body in bodies:
        queue.send(body)
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[list[str]] = ctx.Queue()
    procs = [ctx.Process(target=_drain, args=(str(path), out)) for _ in range(3)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    received = [body for got in results for body in got]
    assert sorted(received, key=int) == bodies
    assert len(set(received)) == len(received)


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB file system (tmpfs), mounted for the test; skipped where mounting is
    not permitted (not root, or a container without the capability)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_data_folder_is_reported_as_full(tiny_folder: Path) -> None:
    """When the folder fills up, the error says the folder is full and how much is free,
    not only SQLite's "disk I/O error"."""
    queue = SqliteQueue(tiny_folder / "queue.db", "q")
    with pytest.raises(TransientError, match=r"the folder .*tiny is full \(\d+ bytes free"):
        for _ in range(10_000):
            queue.send("x" * 2000)


def test_an_idle_receiver_wakes_when_a_message_is_sent(tmp_path: Path) -> None:
    """The bell: a send from another process (another instance here) ends an idle wait
    within a fraction of a second; one sent between the receive and the wait ends it at
    once; with nothing sent the wait lasts its time, and ``stop`` ends it too."""
    import threading

    worker_side = SqliteQueue(tmp_path / "q.db", "requests")
    producer = SqliteQueue(tmp_path / "q.db", "requests")
    stop = threading.Event()

    assert worker_side.receive(10, 30) == []
    started = time.monotonic()
    worker_side.wait_for_messages(0.3, stop)
    assert time.monotonic() - started >= 0.3  # nothing sent: the whole wait

    assert worker_side.receive(10, 30) == []
    timer = threading.Timer(0.3, producer.send, args=("hello",))
    timer.start()
    started = time.monotonic()
    worker_side.wait_for_messages(30, stop)
    woke = time.monotonic() - started
    timer.join()
    assert 0.25 <= woke < 5
    assert [m.body for m in worker_side.receive(10, 30)] == ["hello"]

    time.sleep(0.05)
    producer.send("sent before the wait")
    started = time.monotonic()
    worker_side.wait_for_messages(30, stop)
    assert time.monotonic() - started < 1

    worker_side.receive(10, 30)
    stop.set()
    started = time.monotonic()
    worker_side.wait_for_messages(30, stop)
    assert time.monotonic() - started < 1
