"""Turnaround on the local backend: from ``submit`` to ``succeeded`` with a worker already
running (and idle), and from a job's end to its result.

Starts ``automl-service worker`` on a fresh data folder, lets it go idle, then submits
``--runs`` requests one after another (``submit --wait``, each on its own request id),
each training ``--sample`` with ``limits.timeout_seconds = --budget``. For each run it
measures the wall time of the ``submit --wait`` process; the job's, from its MLflow parent
run's start (the job's creation, before the trainer starts) to that run's end; and from
the run's end to the result's ``succeeded`` record. Prints a markdown table of min /
median / max.

    python -m benchmarks.turnaround --runs 5 --budget 20 --sample breast_cancer
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from automl_service.result_store import SqliteResultStore

TASKS = {"breast_cancer": "classification", "iris": "classification", "diabetes": "regression"}


@dataclass(frozen=True)
class Run:
    submit_to_succeeded: float
    job_seconds: float
    job_end_to_result: float


def one_run(data_dir: Path, env: dict[str, str], index: int, sample: str, budget: int) -> Run:
    from mlflow import MlflowClient

    request_id = f"turnaround-{index}"
    body = {
        "request_id": request_id,
        "task": TASKS[sample],
        "training_data": f"sample:{sample}",
        "target_column_name": "target",
        "limits": {"timeout_seconds": budget},
        "registration": {"model_name": f"turnaround-{sample}"},
    }
    path = data_dir.parent / f"{request_id}.json"
    path.write_text(json.dumps(body))
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "automl_service", "submit", "--wait", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    ended = time.time()
    if done.returncode != 0:
        raise SystemExit(f"{request_id} did not succeed:\n{done.stdout}\n{done.stderr}")
    result = SqliteResultStore(data_dir / "results.db").get(request_id)
    assert result is not None and result.parent_run_id is not None
    uri = f"sqlite:///{data_dir / 'mlflow.db'}"
    parent = MlflowClient(tracking_uri=uri).get_run(result.parent_run_id)
    job_end = parent.info.end_time / 1000
    return Run(
        submit_to_succeeded=ended - started,
        job_seconds=job_end - parent.info.start_time / 1000,
        job_end_to_result=result.updated_at - job_end,
    )


def table(runs: list[Run], budget: int, sample: str) -> str:
    rows = [
        ("submit to succeeded (s)", [r.submit_to_succeeded for r in runs]),
        ("job, created to ended (s)", [r.job_seconds for r in runs]),
        ("job end to result (s)", [r.job_end_to_result for r in runs]),
    ]
    lines = [
        f"{sample}, `limits.timeout_seconds = {budget}`, {len(runs)} runs, worker idle before each",
        "",
        "| measure | min | median | max |",
        "|---|---:|---:|---:|",
    ]
    for name, values in rows:
        lines.append(
            f"| {name} | {min(values):.1f} | {statistics.median(values):.1f} | {max(values):.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--sample", choices=sorted(TASKS), default="breast_cancer")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds idle before each run")
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="automl-turnaround-")) / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOML_SERVICE_")}
    env["AUTOML_SERVICE_LOCAL__DATA_DIR"] = str(data_dir)
    worker_log = (data_dir.parent / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "automl_service", "worker"],
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    runs = []
    try:
        for index in range(args.runs):
            time.sleep(args.idle)  # the worker's idle polls have backed off by now
            runs.append(one_run(data_dir, env, index, args.sample, args.budget))
            print(f"run {index}: {runs[-1]}", file=sys.stderr)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        worker_log.close()
    print(table(runs, args.budget, args.sample))
    return 0


if __name__ == "__main__":
    sys.exit(main())
