"""Azure Storage Queue intake and outcome messages, against a real Azurite."""

from __future__ import annotations

import base64
import contextlib
import json
import random
import threading
import time
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.storage.queue import QueueServiceClient, TextBase64EncodePolicy
from fixtures_azurite import (
    FAST_RETRY,
    Azurite,
    FlakyProxy,
    make_queue,
    make_sink,
    require_azurite,
)
from fixtures_worker import iris_body, make_worker, mlflow_client
from pydantic import SecretStr

from automl_service.azure_retry import RetryPolicy, backoff, is_transient
from automl_service.backends import build_queue, build_sink
from automl_service.errors import (
    ConfigurationError,
    InvalidRequest,
    PermanentError,
    StaleReceipt,
    TransientError,
)
from automl_service.queues.azure_storage import (
    service_client,
)
from automl_service.queues.encoding import (
    MAX_QUEUE_MESSAGE_BYTES,
    decode,
    encode,
    fallback_failures,
    looks_base64,
    parse_poison,
    split_header,
    with_header,
)
from automl_service.queues.trim import fit_result
from automl_service.results import LeaderboardRow, RequestResult, RequestState
from automl_service.settings import QueueSettings, Settings
from automl_service.waiting import wait_for_results
from automl_service.worker import Worker

pytest_plugins = ["fixtures_azurite"]

REQUEST = json.dumps(
    {"task": "classification", "training_data": "sample:iris", "target_column_name": "target"}
)


def raw_messages(service: QueueServiceClient, name: str) -> list[str]:
    """The texts on a queue exactly as stored (peeked: nothing is hidden or changed); none
    when the queue does not exist."""
    try:
        return [str(m.content) for m in service.get_queue_client(name).peek_messages(32)]
    except ResourceNotFoundError:
        return []


# Pure parts ---------------------------------------------------------------------------


class TestEncoding:
    def test_json_is_never_taken_for_base64(self) -> None:
        """A plain JSON request is read as text in auto mode."""
        decoded = decode(REQUEST, "auto")
        assert (decoded.text, decoded.encoding, decoded.failures) == (REQUEST, "text", 0)

    def test_base64_detected_and_decoded(self) -> None:
        """Base64 of UTF-8 text is decoded in auto mode and remembered as base64."""
        decoded = decode(base64.b64encode(REQUEST.encode()).decode(), "auto")
        assert (decoded.text, decoded.encoding) == (REQUEST, "base64")

    def test_text_setting_never_decodes(self) -> None:
        """With encoding "text", base64-looking text is left as it is."""
        raw = base64.b64encode(b"hello").decode()
        assert decode(raw, "text").text == raw

    def test_base64_setting_passes_garbage_through(self) -> None:
        """With encoding "base64", text that does not decode reaches the parser unchanged."""
        assert decode("{not base64}", "base64").text == "{not base64}"

    def test_header_round_trip(self) -> None:
        """The failures header carries the count and strips back to the producer's text."""
        assert split_header(with_header(REQUEST, 3)) == (3, REQUEST, True)
        assert split_header(REQUEST) == (0, REQUEST, False)

    def test_too_large_for_header_counts_receives(self) -> None:
        """A message with no room for the header counts every earlier receive as failed."""
        big = decode("x" * (MAX_QUEUE_MESSAGE_BYTES - 5), "text")
        assert fallback_failures(big, 4) == 3
        assert fallback_failures(decode(REQUEST, "text"), 4) == 0

    def test_looks_base64_rejects_unpadded_and_binary(self) -> None:
        """Only strict padded base64 of UTF-8 counts as base64."""
        assert not looks_base64("abc")
        assert not looks_base64(base64.b64encode(b"\xff\xfe\xfd").decode())
        assert looks_base64(base64.b64encode("héllo".encode()).decode())


class TestTrim:
    def huge(self, rows: int = 3000) -> RequestResult:
        board = [
            LeaderboardRow(run_id=f"run-{i:05d}-" + "x" * 40, algorithm="lgbm", value=i / rows)
            for i in range(rows)
        ]
        return RequestResult(
            request_id="req-big", state=RequestState.SUCCEEDED, leaderboard=board, best_value=1.0
        )

    @pytest.mark.parametrize("encoding", ["text", "base64"])
    def test_leaderboard_goes_first(self, encoding: str) -> None:
        """An oversized result keeps its fields and the top of its leaderboard, and fits."""
        result = self.huge()
        wire = fit_result(result.model_dump_json(), encoding)  # type: ignore[arg-type]
        assert len(wire.encode()) <= MAX_QUEUE_MESSAGE_BYTES
        text = base64.b64decode(wire).decode() if encoding == "base64" else wire
        back = RequestResult.model_validate_json(text)
        assert back.request_id == "req-big" and back.best_value == 1.0
        assert 0 < len(back.leaderboard) < len(result.leaderboard)
        assert back.leaderboard == result.leaderboard[: len(back.leaderboard)]
        assert "leaderboard cut" in (back.selection_reason or "")

    def test_long_error_is_cut_when_rows_are_not_enough(self) -> None:
        """A result whose error alone is too long still fits, with the error cut."""
        result = RequestResult(request_id="r1", state=RequestState.FAILED, error="e" * 100_000)
        back = RequestResult.model_validate_json(fit_result(result.model_dump_json(), "text"))
        assert back.state is RequestState.FAILED and back.error and len(back.error) < 65_536

    def test_small_result_untouched(self) -> None:
        """A result that fits is sent as it is."""
        body = RequestResult(request_id="r2", state=RequestState.SUCCEEDED).model_dump_json()
        assert fit_result(body, "text") == body

    def test_oversized_non_result_is_refused(self) -> None:
        """A large body that is not a result raises instead of being cut blindly."""
        with pytest.raises(PermanentError):
            fit_result("x" * 70_000, "text")


class TestRetryArithmetic:
    def test_throttling_waits_longer(self) -> None:
        """After 503 ServerBusy the wait is at least half the throttled base."""
        busy = HttpResponseError(message="busy")
        busy.status_code = 503
        busy.error_code = "ServerBusy"  # type: ignore[attr-defined]
        policy = RetryPolicy(base_seconds=0.01, throttled_base_seconds=2.0, max_wait_seconds=30)
        waits = [backoff(1, busy, policy, random.Random(i)) for i in range(50)]
        assert min(waits) >= 1.0
        assert max(backoff(1, None, policy, random.Random(i)) for i in range(50)) <= 0.01

    def test_classification(self) -> None:
        """Connection errors and 5xx/429 are transient; 400/403/404 are not."""
        assert is_transient(ServiceRequestError("refused"))
        for status, expected in ((500, True), (429, True), (400, False), (404, False)):
            err = HttpResponseError(message="x")
            err.status_code = status
            assert is_transient(err) is expected


# The queue on Azurite -----------------------------------------------------------------


class TestQueue:
    def test_round_trip(self, azurite: Azurite, queue_name: str) -> None:
        """send, receive (hidden), hide, receive again with the new receipt, delete."""
        q = make_queue(azurite.port, queue_name)
        message_id = q.send(REQUEST)
        [m] = q.receive(4, 30)
        assert (m.message_id, m.body, m.dequeue_count, m.failures) == (message_id, REQUEST, 1, 0)
        assert m.inserted_at == pytest.approx(time.time(), abs=60)
        assert q.receive(4, 30) == []  # hidden while held
        hidden = q.hide(m, 0)
        assert hidden.receipt != m.receipt
        [again] = q.receive(4, 30)
        assert again.dequeue_count == 2 and again.body == REQUEST
        q.delete(again)
        q.delete(again)  # already gone: not an error
        assert q.receive(4, 0.5) == [] and q.visible_count() == 0

    def test_base64_and_plain_producers(
        self, azurite: Azurite, queue_name: str, service: QueueServiceClient
    ) -> None:
        """Messages written as base64 (Functions, Logic Apps) and as plain text both arrive
        as the producer's text in auto mode."""
        q = make_queue(azurite.port, queue_name)
        q.check()  # creates the queue
        producer = service.get_queue_client(
            queue_name, message_encode_policy=TextBase64EncodePolicy()
        )
        producer.send_message(REQUEST)
        service.get_queue_client(queue_name).send_message(REQUEST.replace("iris", "wine"))
        bodies = sorted(m.body for m in q.receive(8, 30))
        assert bodies == sorted([REQUEST, REQUEST.replace("iris", "wine")])

    def test_base64_setting_writes_base64(
        self, azurite: Azurite, queue_name: str, service: QueueServiceClient
    ) -> None:
        """With encoding "base64" the adapter writes what a base64 consumer can decode."""
        q = make_queue(azurite.port, queue_name, encoding="base64")
        q.send(REQUEST)
        [raw] = raw_messages(service, queue_name)
        assert base64.b64decode(raw).decode() == REQUEST
        assert q.receive(1, 30)[0].body == REQUEST

    @pytest.mark.parametrize("producer_encoding", ["text", "base64"])
    def test_failures_counted_apart_from_dequeue_count(
        self,
        azurite: Azurite,
        queue_name: str,
        service: QueueServiceClient,
        producer_encoding: str,
    ) -> None:
        """Each failed hide adds one to failures, kept across receives and beside the
        producer's text in the producer's own encoding; not-ready hides add nothing."""
        q = make_queue(azurite.port, queue_name)
        q.check()
        service.get_queue_client(queue_name).send_message(encode(REQUEST, producer_encoding))  # type: ignore[arg-type]
        [m] = q.receive(1, 30)
        m = q.hide(m, 0, failed=True)
        assert m.failures == 1
        [m] = q.receive(1, 30)
        assert (m.failures, m.dequeue_count, m.body) == (1, 2, REQUEST)
        m = q.hide(m, 0)  # not ready: no change
        [m] = q.receive(1, 30)
        assert (m.failures, m.dequeue_count) == (1, 3)
        m = q.hide(m, 0, failed=True)
        [raw] = raw_messages(service, queue_name)
        text = base64.b64decode(raw).decode() if producer_encoding == "base64" else raw
        assert split_header(text) == (2, REQUEST, True)
        [m] = q.receive(1, 30)
        assert (m.failures, m.dequeue_count, m.body) == (2, 4, REQUEST)

    def test_not_ready_rechecks_never_count(
        self, azurite: Azurite, queue_name: str, service: QueueServiceClient
    ) -> None:
        """A message re-hidden as not ready more often than the poison threshold still has
        failures 0, and its text on the queue is exactly what the producer wrote."""
        q = make_queue(azurite.port, queue_name)
        q.send(REQUEST)
        for _ in range(8):
            [m] = q.receive(1, 30)
            assert m.failures == 0
            q.hide(m, 0)
        [m] = q.receive(1, 30)
        assert (m.failures, m.dequeue_count) == (0, 9)
        assert raw_messages(service, queue_name) == []  # hidden now
        q.hide(m, 0)
        assert raw_messages(service, queue_name) == [REQUEST]

    def test_poison_after_failures(
        self, azurite: Azurite, queue_name: str, service: QueueServiceClient
    ) -> None:
        """After N failed attempts the message goes to <name>-poison with the producer's
        text (no header) and the reason, and leaves the main queue."""
        q = make_queue(azurite.port, queue_name)
        q.check()
        service.get_queue_client(
            queue_name, message_encode_policy=TextBase64EncodePolicy()
        ).send_message(REQUEST)
        max_failures = 3
        while True:
            [m] = q.receive(1, 30)
            if m.failures + 1 >= max_failures:
                q.dead_letter(m, "gave up after 3 failed attempts; last: boom")
                break
            q.hide(m, 0, failed=True)
        assert q.receive(1, 0.5) == []
        [raw] = raw_messages(service, queue_name + "-poison")
        record = parse_poison(base64.b64decode(raw).decode())  # written as it came: base64
        assert record is not None
        assert record.original == REQUEST and record.failures == 2
        assert record.reason.startswith("gave up after 3") and record.queue == queue_name

    def test_garbage_poisoned_at_once(
        self, azurite: Azurite, queue_name: str, service: QueueServiceClient
    ) -> None:
        """A message that is not a request can be dead-lettered on its first receive."""
        q = make_queue(azurite.port, queue_name)
        q.send("not json at all")
        [m] = q.receive(1, 30)
        q.dead_letter(m, "message is not JSON")
        [raw] = raw_messages(service, queue_name + "-poison")
        record = parse_poison(raw)
        assert record is not None and record.original == "not json at all"
        assert record.dequeue_count == 1 and record.failures == 0
        assert q.poisoned() == [record]

    def test_stale_receipt(
        self, azurite: Azurite, queue_name: str, service: QueueServiceClient
    ) -> None:
        """Once the visibility ran out and another receiver took the message, the first
        receipt can neither hide, delete nor dead-letter it; the new holder can."""
        q = make_queue(azurite.port, queue_name)
        assert q.poisoned() == []  # no poison queue yet
        q.send(REQUEST)
        [first] = q.receive(1, 1)
        time.sleep(1.3)
        [second] = q.receive(1, 30)
        with pytest.raises(StaleReceipt, match="another receipt"):
            q.hide(first, 5)
        with pytest.raises(StaleReceipt):
            q.delete(first)
        with pytest.raises(StaleReceipt):
            q.dead_letter(first, "should not arrive")
        assert raw_messages(service, queue_name + "-poison") == []
        q.delete(second)
        with pytest.raises(StaleReceipt, match="gone"):
            q.hide(second, 5)

    def test_missing_queue_without_create_is_configuration_error(
        self, azurite: Azurite, queue_name: str
    ) -> None:
        """With create_queues off, a missing queue is a configuration error, not a retry."""
        q = make_queue(azurite.port, queue_name, create_queues=False)
        with pytest.raises(ConfigurationError, match="QueueNotFound"):
            q.receive(1, 30)

    def test_a_queue_that_disappears_is_created_again(
        self, azurite: Azurite, service: QueueServiceClient, queue_name: str
    ) -> None:
        """With create_queues on, a queue deleted under a running worker costs one
        transient error; the next call creates it again and the queue works."""
        q = make_queue(azurite.port, queue_name)
        q.send("first")
        service.delete_queue(queue_name)
        with pytest.raises(TransientError, match="creating it again"):
            q.receive(1, 30)
        assert q.receive(1, 30) == []
        q.send("second")
        [message] = q.receive(1, 30)
        assert message.body == "second"

    def test_wrong_key_is_configuration_error(self, azurite: Azurite, queue_name: str) -> None:
        """A refused credential raises ConfigurationError at once, without retries."""
        bad = base64.b64encode(b"not the key" * 4).decode()
        q = make_queue(azurite.port, queue_name, key=bad)
        started = time.monotonic()
        with pytest.raises(ConfigurationError):
            q.check()
        assert time.monotonic() - started < 2

    def test_invalid_queue_name_is_configuration_error(self, azurite: Azurite) -> None:
        """A queue name Azure would refuse (or whose poison queue it would) fails early."""
        for name in ("Upper-Case", "a" * 60, "double--hyphen"):
            with pytest.raises(ConfigurationError, match="invalid queue name"):
                make_queue(azurite.port, name)

    def test_oversized_send_refused(self, azurite: Azurite, queue_name: str) -> None:
        """A body over 64 KiB encoded is refused before it is sent."""
        q = make_queue(azurite.port, queue_name, encoding="base64")
        with pytest.raises(InvalidRequest):
            q.send("x" * 50_000)  # fits as text, not as base64


class TestResultSink:
    def test_reply_to_and_default(self, azurite: Azurite, service: QueueServiceClient) -> None:
        """Results go to the named reply queue, else to the default result queue."""
        sink = make_sink(azurite.port, "results-default")
        result = RequestResult(request_id="r-1", state=RequestState.SUCCEEDED, model_version="3")
        sink.publish("reply-here", result.model_dump_json())
        sink.publish(None, result.merged(request_id="r-2").model_dump_json())
        [reply] = raw_messages(service, "reply-here")
        [default] = raw_messages(service, "results-default")
        assert RequestResult.model_validate_json(reply).model_version == "3"
        assert RequestResult.model_validate_json(default).request_id == "r-2"

    def test_no_queue_named_is_a_no_op(self, azurite: Azurite) -> None:
        """With no reply_to and no default, publishing sends nothing and raises nothing."""
        make_sink(azurite.port, None).publish(None, "{}")

    def test_huge_leaderboard_trimmed_not_dropped(
        self, azurite: Azurite, service: QueueServiceClient, queue_name: str
    ) -> None:
        """A result over 64 KiB arrives, base64 as configured, with a shorter leaderboard."""
        sink = make_sink(azurite.port, queue_name, encoding="base64")
        result = TestTrim().huge()
        assert len(result.model_dump_json()) > MAX_QUEUE_MESSAGE_BYTES
        sink.publish(None, result.model_dump_json())
        [raw] = raw_messages(service, queue_name)
        back = RequestResult.model_validate_json(base64.b64decode(raw))
        assert back.request_id == result.request_id
        assert 0 < len(back.leaderboard) < len(result.leaderboard)


# Transient failures on real sockets ---------------------------------------------------


class TestRetries:
    def test_connection_resets_are_retried(self, azurite: Azurite, queue_name: str) -> None:
        """Two reset connections, then the call goes through on the third."""
        make_queue(azurite.port, queue_name).check()
        proxy = FlakyProxy(azurite.port, ["reset", "reset"])
        try:
            q = make_queue(proxy.port, queue_name)
            q.send(REQUEST)
            assert proxy.connections >= 3
        finally:
            proxy.close()
        assert make_queue(azurite.port, queue_name).receive(1, 30)[0].body == REQUEST

    def test_server_busy_backs_off_then_succeeds(self, azurite: Azurite, queue_name: str) -> None:
        """503 ServerBusy is retried after at least half the throttled base wait."""
        make_queue(azurite.port, queue_name).check()
        proxy = FlakyProxy(azurite.port, ["busy", "busy"])
        try:
            q = make_queue(proxy.port, queue_name, create_queues=False)
            assert q.visible_count() == 0
            gaps = [b - a for a, b in zip(proxy.times, proxy.times[1:], strict=False)]
        finally:
            proxy.close()
        assert len(gaps) >= 2
        assert min(gaps[:2]) >= FAST_RETRY.throttled_base_seconds / 2 * 0.9

    def test_always_failing_raises_transient(self, azurite: Azurite, queue_name: str) -> None:
        """A peer that always resets ends in TransientError after the policy's attempts."""
        proxy = FlakyProxy(azurite.port, [], after="reset")
        try:
            q = make_queue(proxy.port, queue_name)
            with pytest.raises(TransientError, match="after retries"):
                q.receive(1, 30)
            assert proxy.connections == FAST_RETRY.attempts
        finally:
            proxy.close()

    @pytest.mark.process
    def test_storage_restarted_mid_call(self, tmp_path: Path, queue_name: str) -> None:
        """With Azurite stopped, a receive keeps retrying and gets the message once Azurite
        is back on the same port with the same data."""
        server = Azurite(require_azurite(), tmp_path / "run", location=tmp_path / "data")
        server.start()
        try:
            q = make_queue(
                server.port,
                queue_name,
                retry=RetryPolicy(
                    attempts=1000, base_seconds=0.2, max_wait_seconds=0.5, max_total_seconds=90
                ),
            )
            q.send(REQUEST)
            server.stop()
            restarter = threading.Timer(1.5, server.start)
            restarter.start()
            [m] = q.receive(1, 30)
            restarter.join()
            assert m.body == REQUEST
        finally:
            server.stop()


# Settings -----------------------------------------------------------------------------


class TestFromSettings:
    def test_connection_string(self, azurite: Azurite, queue_name: str) -> None:
        """Settings with a connection string build a working queue and sink."""
        s = Settings()
        s.queue.kind = "azure_storage"
        s.queue.name = queue_name
        s.queue.connection_string = SecretStr(azurite.connection_string)
        s.queue.result_queue = queue_name + "-results"
        q = build_queue(s)
        q.send(REQUEST)
        assert q.receive(1, 30)[0].body == REQUEST
        sink = build_sink(s)
        assert sink is not None
        sink.publish(None, "{}")

    def test_managed_identity(self) -> None:
        """An account URL alone means DefaultAzureCredential with the identity's client id."""
        from azure.identity import DefaultAzureCredential

        s = Settings()
        s.queue.account_url = "https://example.queue.core.windows.net"
        s.azure.client_id = "00000000-0000-0000-0000-000000000001"
        client = service_client(s.queue, client_id=s.azure.client_id)
        assert isinstance(client.credential, DefaultAzureCredential)

    def test_neither_is_configuration_error(self) -> None:
        """Without a connection string or an account URL the queue cannot be built."""
        with pytest.raises(ConfigurationError):
            service_client(QueueSettings())


# The worker on Azurite ----------------------------------------------------------------


def azure_queue_settings(settings: Settings, azurite: Azurite, name: str) -> Settings:
    """The conftest's local-backend settings, taking requests from Azurite instead."""
    settings.queue.kind = "azure_storage"
    settings.queue.name = name
    settings.queue.connection_string = SecretStr(azurite.connection_string)
    settings.queue.result_queue = name + "-results"
    return settings


def wait_ended(workers: list[Worker], ids: list[str], timeout: float) -> dict[str, RequestResult]:
    """Run each worker's batches until every request id has a terminal result."""
    stop = threading.Event()

    def step() -> None:
        for worker in workers:
            worker.run_once(stop)

    return wait_for_results(workers[0].results, ids, timeout=timeout, step=step, interval=0.2)


@pytest.mark.slow
class TestWorkerOnAzurite:
    @pytest.mark.timeout(600)
    def test_request_round_trip(
        self, settings: Settings, azurite: Azurite, queue_name: str, service: QueueServiceClient
    ) -> None:
        """A base64 request from an Azure Storage queue trains, registers, reports its
        outcome on the reply queue it names and leaves the queue; garbage beside it is
        poisoned and reported on the default result queue."""
        s = azure_queue_settings(settings, azurite, queue_name)
        worker = make_worker(s)
        worker.queue.check()
        producer = service.get_queue_client(
            queue_name, message_encode_policy=TextBase64EncodePolicy()
        )
        producer.send_message(
            iris_body("az-e2e", reply_to=queue_name + "-replies", limits={"timeout_seconds": 5})
        )
        producer.send_message("definitely not a request")

        result = wait_ended([worker], ["az-e2e"], timeout=240)["az-e2e"]

        assert result.state is RequestState.SUCCEEDED, result.error
        assert result.attempts == 0 and worker.stats.counters["rechecked"] >= 1
        [version] = mlflow_client(s.local.mlflow_uri).search_model_versions("name = 'iris-az-e2e'")
        assert str(version.version) == result.model_version
        [reply] = [
            RequestResult.model_validate_json(text)
            for text in raw_messages(service, queue_name + "-replies")
        ]
        assert reply.request_id == "az-e2e"
        assert reply.state is RequestState.SUCCEEDED
        assert reply.model_version == result.model_version
        [poisoned] = [
            RequestResult.model_validate_json(text)
            for text in raw_messages(service, queue_name + "-results")
        ]
        assert poisoned.state is RequestState.POISONED
        [poison] = raw_messages(service, queue_name + "-poison")
        record = parse_poison(base64.b64decode(poison).decode())
        assert record is not None and record.original == "definitely not a request"
        assert "not JSON" in record.reason
        assert worker.queue.receive(4, 1) == []

    @pytest.mark.timeout(900)
    def test_two_workers_share_one_queue(
        self, settings: Settings, azurite: Azurite, queue_name: str
    ) -> None:
        """Two workers on one queue with 10 requests, taken 4 at a time: every request ends
        with exactly one job (one parent run) and one model version."""
        s = azure_queue_settings(settings, azurite, queue_name)
        s.local.max_concurrent_jobs = 2
        s.worker.batch_size = 4
        first, second = make_worker(s), make_worker(s)
        ids = [f"pair-{i:02d}" for i in range(10)]
        for rid in ids:
            first.queue.send(iris_body(rid, limits={"timeout_seconds": 10, "max_trials": 3}))

        stop = threading.Event()
        threads = [
            threading.Thread(target=w.run, args=(stop,), daemon=True) for w in (first, second)
        ]
        for thread in threads:
            thread.start()
        try:
            with contextlib.suppress(TransientError):  # the asserts below say what is missing
                wait_for_results(first.results, ids, timeout=600)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)

        results = {rid: first.results.get(rid) for rid in ids}
        states = {rid: (r.state.value, r.error) if r else None for rid, r in results.items()}
        assert all(r is not None and r.state is RequestState.SUCCEEDED for r in results.values()), (
            states
        )
        client = mlflow_client(s.local.mlflow_uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        parents = [
            r
            for r in client.search_runs(experiments, max_results=5000)
            if "mlflow.parentRunId" not in r.data.tags
        ]
        jobs = [r.data.tags.get("automl_service.job_name") for r in parents]
        assert sorted(jobs) == sorted(f"automl-{rid}" for rid in ids)
        for rid in ids:
            versions = client.search_model_versions(f"name = 'iris-{rid}'")
            assert len(versions) == 1, rid
        handled = first.stats.counters["received"], second.stats.counters["received"]
        assert all(n > 0 for n in handled), handled
