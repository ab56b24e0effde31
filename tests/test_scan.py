"""The child-run scan against a real MLflow store, counting the calls it makes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pytest

from automl_service.metrics import Goal
from automl_service.scan import child_filter, halves, scan_child_runs, split_point
from automl_service.selection import select_best

if TYPE_CHECKING:
    from fixtures_mlflow_store import MlflowStore

pytest_plugins = ["fixtures_mlflow_store"]

CHILDREN = 23
ROOT = Path(__file__).resolve().parents[1]


class CountingClient:
    """Passes every call to the real client and counts the ``search_runs`` calls."""

    def __init__(self, client: mlflow.MlflowClient) -> None:
        self.client = client
        self.search_calls = 0

    def search_runs(self, *args: Any, **kwargs: Any) -> Any:
        self.search_calls += 1
        return self.client.search_runs(*args, **kwargs)


@pytest.fixture(scope="module")
def family(mlflow_store: MlflowStore) -> tuple[str, str]:
    """An experiment with one parent of CHILDREN runs (two failed, one running) and a
    stranger run of another parent; returns (experiment id, parent run id)."""
    client = mlflow_store.client
    experiment_id = client.create_experiment(f"scan-{uuid.uuid4().hex[:6]}")
    parent = client.create_run(experiment_id, run_name="parent").info.run_id
    other = client.create_run(experiment_id, run_name="other").info.run_id
    for i in range(CHILDREN):
        child = client.create_run(
            experiment_id,
            tags={"mlflow.parentRunId": parent, "algorithm": f"algo{i % 3}"},
        ).info.run_id
        client.log_metric(child, "accuracy", i / 100)
        client.log_metric(child, "log_loss", 1 - i / 100)
        client.log_param(child, "n_estimators", str(i))
        status = "FAILED" if i in (5, 22) else "RUNNING" if i == 21 else "FINISHED"
        if status != "RUNNING":
            client.set_terminated(child, status)
    stranger = client.create_run(experiment_id, tags={"mlflow.parentRunId": other}).info.run_id
    client.log_metric(stranger, "accuracy", 1.0)
    client.set_terminated(stranger, "FINISHED")
    return experiment_id, parent


def test_scan_reads_every_child_in_pages(
    mlflow_store: MlflowStore, family: tuple[str, str]
) -> None:
    """With page size 5, all children come back with metrics, params and tags in
    ceil(N / 5) search calls and nothing else."""
    experiment_id, parent = family
    client = CountingClient(mlflow_store.client)
    records = scan_child_runs(client, [experiment_id], parent, page_size=5)
    assert len(records) == CHILDREN
    assert len({r.run_id for r in records}) == CHILDREN
    assert client.search_calls == math.ceil(CHILDREN / 5)
    by_param = {r.params["n_estimators"]: r for r in records}
    seven = by_param["7"]
    assert seven.metrics == {"accuracy": 7 / 100, "log_loss": 1 - 7 / 100}
    assert seven.tags["algorithm"] == "algo1"
    assert seven.status == "FINISHED"
    assert seven.end_time_ms is not None


def test_scan_then_select_picks_the_best_finished_child(
    mlflow_store: MlflowStore, family: tuple[str, str]
) -> None:
    """Scan plus selection picks the best finished child for either direction, and never
    the better but failed or running ones, nor another parent's child."""
    experiment_id, parent = family
    records = scan_child_runs(mlflow_store.client, [experiment_id], parent, page_size=10)
    best = select_best(records, "accuracy", Goal.MAXIMIZE)
    assert best.winner.params["n_estimators"] == "20"
    assert len(best.rejected) == 3
    lowest = select_best(records, "log_loss", Goal.MINIMIZE)
    assert lowest.winner.run_id == best.winner.run_id


def test_status_filter_and_keep(mlflow_store: MlflowStore, family: tuple[str, str]) -> None:
    """The status filter is applied by the store; ``keep`` drops records client-side."""
    experiment_id, parent = family
    client = CountingClient(mlflow_store.client)
    finished = scan_child_runs(client, [experiment_id], parent, status="FINISHED", page_size=7)
    assert len(finished) == CHILDREN - 3
    assert client.search_calls == math.ceil((CHILDREN - 3) / 7)
    kept = scan_child_runs(
        mlflow_store.client,
        [experiment_id],
        parent,
        keep=lambda r: r.tags.get("algorithm") == "algo0",
    )
    assert len(kept) == len(range(0, CHILDREN, 3))


def test_empty_parent_is_one_call(mlflow_store: MlflowStore, family: tuple[str, str]) -> None:
    """A parent with no children costs exactly one call and yields nothing."""
    experiment_id, _ = family
    client = CountingClient(mlflow_store.client)
    assert scan_child_runs(client, [experiment_id], "no-such-parent") == []
    assert client.search_calls == 1


def test_split_scan_reads_each_child_once(
    mlflow_store: MlflowStore, family: tuple[str, str]
) -> None:
    """Split at a child's own start time, the two halves hold every child exactly once
    (that child in the later half), at the cost of at most one call more."""
    experiment_id, parent = family
    whole = scan_child_runs(mlflow_store.client, [experiment_id], parent)
    starts = sorted({r.start_time_ms for r in whole if r.start_time_ms is not None})
    split = starts[len(starts) // 2]
    client = CountingClient(mlflow_store.client)
    split_scan = scan_child_runs(client, [experiment_id], parent, page_size=5, split_at_ms=split)
    assert sorted(r.run_id for r in split_scan) == sorted(r.run_id for r in whole)
    assert {r.run_id: r for r in split_scan} == {r.run_id: r for r in whole}
    assert client.search_calls <= math.ceil(CHILDREN / 5) + 1
    before = sum(1 for r in whole if (r.start_time_ms or 0) < split)
    assert 0 < before < CHILDREN


def test_split_point_is_the_middle_of_the_parents_life() -> None:
    """A finished parent splits at the middle of start and end, a running one at the
    middle of start and now, and a clock that ran backwards at the start."""
    assert split_point(1_000, 3_000) == 2_000
    assert split_point(1_000, None, now_ms=2_000) == 1_500
    assert split_point(5_000, 4_000) == 5_000
    assert halves("f", 42) == (
        "f and attributes.start_time < 42",
        "f and attributes.start_time >= 42",
    )


def test_filter_quotes_ids() -> None:
    """Quotes in a parent id cannot break out of the filter string."""
    assert child_filter("a'b", "FINISHED") == (
        "tags.mlflow.parentRunId = 'a\\'b' and attributes.status = 'FINISHED'"
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_scan_benchmark_runs_small(tmp_path: Path) -> None:
    """The benchmark command fills a store, measures both ways against SQLite and a real
    mlflow server, agrees on the winner, and the scan stays within its call budget."""
    out = tmp_path / "scan.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.scan_benchmark", "--children", "100",
         "--json", str(out), "--workdir", str(tmp_path / "work"), "--server-workers", "2"],
        cwd=ROOT, check=True, capture_output=True, timeout=580,
    )  # fmt: skip
    summary = json.loads(out.read_text())
    assert summary["winners_agree"]
    calls = {(r["store"], r["method"]): r["calls"] for r in summary["results"]}
    assert calls == {
        ("sqlite", "scan"): 1,
        ("sqlite", "per-run"): 101,
        # the parent's get_run, then one page for each half of its children
        ("server-2w", "scan"): 3,
        ("server-2w", "per-run"): 101,
    }
    assert summary["targets"]["server-2w_scan_calls_ok"]
