"""MLflow's REST search read straight into RunRecords, against a real ``mlflow server``."""

from __future__ import annotations

import math
import uuid
from typing import Any

import mlflow
import pytest
from azureml_fake.fixtures import TrackingServer
from fixtures_local import make_request, wait_terminal

from automl_service.engines.base import JobState
from automl_service.engines.local import LocalEngine
from automl_service.rest_tracking import (
    RestRunSearch,
    record_from_json,
    scan_tracking_store,
)
from automl_service.runs import RunRecord
from automl_service.scan import scan_child_runs
from automl_service.settings import LocalSettings
from automl_service.tags import BEST_CHILD_TAG

pytest_plugins = ["azureml_fake.fixtures", "fixtures_local"]

CHILDREN = 12


class Counting:
    """Counts the ``search_runs`` calls made through a RestRunSearch."""

    def __init__(self, search: RestRunSearch) -> None:
        self.search = search
        self.calls = 0

    def search_runs(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.search.search_runs(*args, **kwargs)


def same(a: RunRecord, b: RunRecord) -> bool:
    """Equal records, NaN metrics counting as equal to NaN."""

    def metrics(r: RunRecord) -> dict[str, Any]:
        return {k: "nan" if math.isnan(v) else v for k, v in r.metrics.items()}

    return (
        a.run_id == b.run_id
        and metrics(a) == metrics(b)
        and (a.status, a.tags, a.params, a.start_time_ms, a.end_time_ms)
        == (b.status, b.tags, b.params, b.start_time_ms, b.end_time_ms)
    )


@pytest.fixture(scope="module")
def family(mlflow_server: TrackingServer) -> tuple[str, str]:
    """A parent of CHILDREN runs on the server, with the awkward values: 0.0, NaN, inf,
    an empty param and tag, one running child; returns (experiment id, parent run id)."""
    client = mlflow.MlflowClient(mlflow_server.url)
    experiment_id = client.create_experiment(f"rest-{uuid.uuid4().hex[:8]}")
    parent = client.create_run(experiment_id, run_name="parent").info.run_id
    awkward = [0.0, math.nan, math.inf, -math.inf]
    for i in range(CHILDREN):
        child = client.create_run(
            experiment_id, tags={"mlflow.parentRunId": parent, "algorithm": f"a{i % 3}"}
        ).info.run_id
        client.log_metric(child, "accuracy", awkward[i] if i < len(awkward) else i / 100)
        client.log_metric(child, "log_loss", 1 - i / 100)
        client.log_param(child, "n_estimators", "" if i == 1 else str(i))
        client.set_tag(child, "note", "")
        if i != 7:
            client.set_terminated(child, "FAILED" if i == 3 else "FINISHED")
    return experiment_id, parent


def test_rest_pages_match_the_mlflow_client(
    mlflow_server: TrackingServer, family: tuple[str, str]
) -> None:
    """Read over REST, every child comes back exactly as MlflowClient's entities give it:
    0.0, NaN and infinities, empty params and tags, a running child without an end."""
    experiment_id, parent = family
    client = mlflow.MlflowClient(mlflow_server.url)
    expected = {r.run_id: r for r in scan_child_runs(client, [experiment_id], parent)}
    got = scan_child_runs(RestRunSearch(mlflow_server.url), [experiment_id], parent)
    assert len(got) == CHILDREN == len(expected)
    assert all(same(record, expected[record.run_id]) for record in got)
    running = [r for r in got if r.status == "RUNNING"]
    assert len(running) == 1 and running[0].end_time_ms is None
    values = sorted(r.metrics["accuracy"] for r in got if not math.isnan(r.metrics["accuracy"]))
    # MLflow's SQL store keeps infinities as the largest finite doubles
    assert values[0] <= -1e308 and values[-1] >= 1e308 and 0.0 in values


def test_split_rest_scan_stays_in_its_call_budget(
    mlflow_server: TrackingServer, family: tuple[str, str]
) -> None:
    """Split at the middle child's start, the halves are read at once, together hold every
    child once, and cost at most one page more than a single pass."""
    experiment_id, parent = family
    whole = scan_child_runs(RestRunSearch(mlflow_server.url), [experiment_id], parent)
    starts = sorted(r.start_time_ms or 0 for r in whole)
    search = Counting(RestRunSearch(mlflow_server.url))
    halves = scan_child_runs(
        search, [experiment_id], parent, page_size=5, split_at_ms=starts[CHILDREN // 2]
    )
    assert sorted(r.run_id for r in halves) == sorted(r.run_id for r in whole)
    assert search.calls <= math.ceil(CHILDREN / 5) + 1


def test_scan_tracking_store_reads_a_server_like_a_local_store(
    mlflow_server: TrackingServer, family: tuple[str, str]
) -> None:
    """The engine's scan gives the same records from a tracking server (over REST, split
    by the parent's life) as from MlflowClient."""
    experiment_id, parent = family
    client = mlflow.MlflowClient(mlflow_server.url)
    expected = {r.run_id: r for r in scan_child_runs(client, [experiment_id], parent)}
    got = scan_tracking_store(client, mlflow_server.url, experiment_id, parent)
    assert sorted(r.run_id for r in got) == sorted(expected)
    assert all(same(record, expected[record.run_id]) for record in got)


def test_proto3_json_numbers_are_read() -> None:
    """A server that follows proto3's JSON mapping sends int64 as strings and doubles as
    "NaN"/"Infinity"; absent values are proto defaults; a run without end has none."""
    record = record_from_json(
        {
            "info": {"run_uuid": "r1", "status": "FINISHED", "start_time": "17", "end_time": "19"},
            "data": {
                "metrics": [{"key": "a", "value": "NaN"}, {"key": "b", "value": "-Infinity"},
                            {"key": "c"}, {"key": "d", "value": 0.5}],
                "params": [{"key": "p"}],
                "tags": [{"key": "t", "value": "v"}],
            },
        }
    )  # fmt: skip
    assert record.run_id == "r1" and record.status == "FINISHED"
    assert (record.start_time_ms, record.end_time_ms) == (17, 19)
    assert math.isnan(record.metrics["a"]) and record.metrics["b"] == -math.inf
    assert record.metrics["c"] == 0.0 and record.metrics["d"] == 0.5
    assert record.params == {"p": ""} and record.tags == {"t": "v"}
    assert record_from_json({"info": {"run_id": "r2"}}).end_time_ms is None


def test_rest_search_refuses_a_local_store() -> None:
    with pytest.raises(ValueError, match="not a tracking server"):
        RestRunSearch("sqlite:///x.db")


@pytest.mark.slow
def test_local_engine_reads_its_children_from_a_tracking_server(
    mlflow_server: TrackingServer, local_settings: LocalSettings
) -> None:
    """With a tracking server as its store, a local job's trials are logged there and the
    engine's scan finds each of them, the trainer's own best child among them."""
    local_settings.tracking_uri = mlflow_server.url
    engine = LocalEngine(local_settings)
    request = make_request(
        "regression", request_id=f"t-remote-{uuid.uuid4().hex[:6]}",
        limits={"timeout_seconds": 10, "max_trials": 4},
    )  # fmt: skip
    engine.ensure_job(request)
    status = wait_terminal(engine, request.job_name, request=request)
    assert status.state is JobState.COMPLETED, status
    children = engine.child_runs(request.job_name)
    client = mlflow.MlflowClient(mlflow_server.url)
    parent = client.get_run(status.parent_run_id or "")
    direct = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert sorted(r.run_id for r in children) == sorted(r.info.run_id for r in direct)
    assert parent.data.tags[BEST_CHILD_TAG] in {r.run_id for r in children}
    assert all("r2_score" in r.metrics for r in children if r.status == "FINISHED")


@pytest.mark.slow
def test_a_password_in_the_tracking_uri_stays_out_of_job_files(
    mlflow_server: TrackingServer, local_settings: LocalSettings
) -> None:
    """With user info in the tracking server's URI, the job trains, and neither the job
    folder's files (owner-only) nor the trainer's log hold the password: it reaches the
    trainer through MLflow's credential variables."""
    password = "PwCanary0x9Q7Zw3"
    local_settings.tracking_uri = mlflow_server.url.replace("http://", f"http://automl:{password}@")
    engine = LocalEngine(local_settings)
    request = make_request(
        "regression", request_id=f"t-cred-{uuid.uuid4().hex[:6]}",
        limits={"timeout_seconds": 10, "max_trials": 3},
    )  # fmt: skip
    engine.ensure_job(request)
    status = wait_terminal(engine, request.job_name, request=request)

    assert status.state is JobState.COMPLETED, status
    assert engine.child_runs(request.job_name)
    job = local_settings.data_dir / "jobs" / request.job_name
    files = [path for path in job.iterdir() if path.is_file()]
    assert {"job.json", "request.json", "trainer.log"} <= {path.name for path in files}
    for path in files:
        assert password not in path.read_text(errors="replace"), path.name
    for name in ("job.json", "request.json", "trainer.log"):
        assert (job / name).stat().st_mode & 0o077 == 0, name
