"""Best-run selection over many child runs: one paginated scan versus a call per run.

Fills a SQLite MLflow store with one parent and ``--children`` child runs, then selects the
best child by accuracy four ways: (scan | per-run) x (the store directly | a real
``mlflow server`` on 127.0.0.1 over that store, as with a remote workspace). Prints a
markdown table and, with ``--json PATH``, writes the figures there.

    python -m benchmarks.scan_benchmark --children 10000 --json scan.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow

from automl_service.metrics import Goal
from automl_service.runs import RunRecord
from automl_service.scan import PAGE_SIZE, child_filter, scan_child_runs, to_record
from automl_service.selection import select_best

from .mlflow_fill import FilledStore, fill_store
from .tracking_server import RequestCounter, mlflow_server

METRIC = "accuracy"
SPEEDUP_TARGET = 20.0


class CountingClient:
    """The real MlflowClient, with a count of the calls made through it."""

    def __init__(self, client: mlflow.MlflowClient) -> None:
        self._client = client
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return attr(*args, **kwargs)

        return counted


@dataclass(frozen=True)
class Measurement:
    store: str  # "sqlite" or "server"
    method: str  # "scan" or "per-run"
    calls: int
    seconds: float
    runs: int
    winner: str
    http_seconds: float  # of ``seconds``, waiting for the server (0 for the direct store)


def scan_method(client: Any, filled: FilledStore) -> list[RunRecord]:
    """One paginated search_runs over the parent's children."""
    return scan_child_runs(client, [filled.experiment_id], filled.parent_run_id)


def per_run_method(client: Any, filled: FilledStore) -> list[RunRecord]:
    """The notebook pattern: list the child ids, then fetch each run on its own."""
    ids: list[str] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            [filled.experiment_id],
            filter_string=child_filter(filled.parent_run_id),
            max_results=PAGE_SIZE,
            page_token=token,
        )
        ids += [run.info.run_id for run in page]
        token = page.token
        if not token:
            break
    return [to_record(client.get_run(run_id)) for run_id in ids]


METHODS: dict[str, Callable[[Any, FilledStore], list[RunRecord]]] = {
    "scan": scan_method,
    "per-run": per_run_method,
}


def measure(store: str, method: str, uri: str, filled: FilledStore, http: bool) -> Measurement:
    client = CountingClient(mlflow.MlflowClient(tracking_uri=uri))
    counter = RequestCounter()
    started = time.perf_counter()
    with counter.active():
        records = METHODS[method](client, filled)
        winner = select_best(records, METRIC, Goal.MAXIMIZE).winner.run_id
    seconds = time.perf_counter() - started
    calls = counter.count if http else client.calls
    return Measurement(
        store, method, calls, round(seconds, 3), len(records), winner, round(counter.seconds, 3)
    )


def warm_up(url: str, filled: FilledStore, rounds: int = 3) -> None:
    """A long-running tracking server is warm: its first large answers are several times
    slower than later ones (lazy imports, statement caches). Serve a few of each kind of
    call, untimed, before measuring."""
    client = mlflow.MlflowClient(tracking_uri=url)
    for _ in range(rounds):
        page = client.search_runs(
            [filled.experiment_id],
            filter_string=child_filter(filled.parent_run_id),
            max_results=PAGE_SIZE,
        )
        for run in list(page)[:20]:
            client.get_run(run.info.run_id)


def run_all(children: int, workdir: Path, stores: list[str]) -> dict[str, Any]:
    db = workdir / "mlflow.db"
    filled = fill_store(db, children)
    print(f"filled {children} child runs in {filled.seconds:.1f} s", file=sys.stderr)
    results: list[Measurement] = []
    if "sqlite" in stores:
        for method in METHODS:
            results.append(measure("sqlite", method, filled.uri, filled, http=False))
            print(f"sqlite {method}: {results[-1].seconds} s", file=sys.stderr)
    if "server" in stores:
        with mlflow_server(filled.uri, workdir / "artifacts", workdir / "server.log") as url:
            warm_up(url, filled)
            for method in METHODS:
                results.append(measure("server", method, url, filled, http=True))
                print(f"server {method}: {results[-1].seconds} s", file=sys.stderr)
    return summarise(filled, results)


def summarise(filled: FilledStore, results: list[Measurement]) -> dict[str, Any]:
    by = {(m.store, m.method): m for m in results}
    speedups = {
        store: round(by[(store, "per-run")].seconds / max(by[(store, "scan")].seconds, 1e-9), 1)
        for store in {m.store for m in results}
        if (store, "scan") in by and (store, "per-run") in by
    }
    max_calls = math.ceil(filled.children / PAGE_SIZE) + 2
    targets: dict[str, Any] = {}
    if ("server", "scan") in by:
        targets = {
            "server_scan_calls": by[("server", "scan")].calls,
            "server_scan_calls_max": max_calls,
            "server_scan_calls_ok": by[("server", "scan")].calls <= max_calls,
        }
        if "server" in speedups:
            targets["server_speedup"] = speedups["server"]
            targets["server_speedup_min"] = SPEEDUP_TARGET
            targets["server_speedup_ok"] = speedups["server"] >= SPEEDUP_TARGET
    return {
        "children": filled.children,
        "finished_children": filled.finished,
        "fill_seconds": round(filled.seconds, 2),
        "expected_winner": filled.best_run_id,
        "winners_agree": all(m.winner == filled.best_run_id for m in results),
        "results": [asdict(m) for m in results],
        "speedup_per_run_over_scan": speedups,
        "targets": targets,
    }


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"Best of {summary['children']} child runs by {METRIC} "
        f"({summary['finished_children']} finished; winners agree: {summary['winners_agree']})",
        "",
        "| store | method | tracking calls | seconds | of which HTTP | runs read |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for m in summary["results"]:
        lines.append(
            f"| {m['store']} | {m['method']} | {m['calls']} | {m['seconds']:.2f} "
            f"| {m['http_seconds']:.2f} | {m['runs']} |"
        )
    lines.append("")
    for store, speedup in sorted(summary["speedup_per_run_over_scan"].items()):
        lines.append(f"- {store}: scan is {speedup}x faster than per-run")
    for key, value in summary["targets"].items():
        lines.append(f"- {key}: {value}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--children", type=int, default=10_000, help="child runs (10000)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--stores", default="sqlite,server", help="which of sqlite,server to measure"
    )
    parser.add_argument("--workdir", type=Path, help="keep the store here (default: a temp dir)")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        summary = run_all(args.children, args.workdir, stores)
    else:
        with tempfile.TemporaryDirectory(prefix="scan-benchmark-") as tmp:
            summary = run_all(args.children, Path(tmp), stores)
    print(markdown(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if summary["winners_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
