"""Turnaround on the local backend: from ``submit`` to ``succeeded`` with a worker already
running (and idle), and from a job's end to its result.

Starts ``automl-service worker`` on a fresh data folder, lets it go idle, then submits
``--runs`` requests one after another (``submit --wait``, each on its own request id),
each training ``--sample`` (or, with ``--rows N``, a generated CSV of N rows and 21
columns: 18 numbers, two text columns, a yes/no target) with ``limits.timeout_seconds =
--budget``. For each run it measures the wall time of the ``submit --wait`` process; the
job's, from its MLflow parent run's start (the job's creation, before the trainer starts)
to that run's end; from the run's end to the result's ``succeeded`` record; and the
trainer's peak memory (its VmHWM, read while it runs). With ``--rows``, the registered
model is also scored on 50,000 more rows drawn the same way (another seed), so a change
that saves time or memory shows what it costs in accuracy. Prints a markdown table of
min / median / max.

    python -m benchmarks.turnaround --runs 5 --budget 20 --sample breast_cancer
    python -m benchmarks.turnaround --runs 3 --budget 60 --rows 1000000
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
import threading
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
    trainer_peak_mb: float
    test_accuracy: float | None = None


def generated_table(path: Path, rows: int, seed: int = 0) -> Path:
    """A classification CSV of ``rows`` rows: 18 numbers, two text columns, ``label``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 18))
    color = rng.choice(["red", "green", "blue", "yellow"], size=rows)
    code = rng.choice([f"c{i}" for i in range(30)], size=rows)
    signal = X[:, 0] * 1.5 - X[:, 1] + 0.5 * X[:, 2] * X[:, 3] + (color == "red") * 0.8
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(18)])
    frame["color"], frame["code"] = color, code
    frame["label"] = np.where(signal + rng.normal(size=rows) > 0, "yes", "no")
    frame.to_csv(path, index=False, float_format="%.4f")
    return path


class PeakMemory:
    """The peak resident memory of the trainer named by a job's pid file, read every half
    second on a thread until it exits."""

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                status = Path(f"/proc/{int(self.pid_file.read_text())}/status").read_text()
                line = next(x for x in status.splitlines() if x.startswith("VmHWM"))
                self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except (OSError, ValueError, StopIteration):
                pass
            self._stop.wait(0.5)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024


def accuracy_on(data_dir: Path, version: str, test_table: Path) -> float:
    """The accuracy of version ``version`` of the registered model on ``test_table``."""
    import mlflow.pyfunc
    import pandas as pd

    mlflow.set_tracking_uri(f"sqlite:///{data_dir / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/turnaround/{version}")
    test = pd.read_csv(test_table)
    predicted = model.predict(test.drop(columns=["label"]))
    labels = predicted["prediction"] if isinstance(predicted, pd.DataFrame) else predicted
    return float((pd.Series(labels).to_numpy() == test["label"].to_numpy()).mean())


def one_run(
    data_dir: Path,
    env: dict[str, str],
    index: int,
    data: str,
    budget: int,
    test_table: Path | None = None,
) -> Run:
    from mlflow import MlflowClient

    request_id = f"turnaround-{index}"
    sample = data.removeprefix("sample:")
    body = {
        "request_id": request_id,
        "task": TASKS.get(sample, "classification"),
        "training_data": data,
        "target_column_name": "target" if sample in TASKS else "label",
        "limits": {"timeout_seconds": budget},
        "registration": {"model_name": "turnaround"},
    }
    path = data_dir.parent / f"{request_id}.json"
    path.write_text(json.dumps(body))
    memory = PeakMemory(data_dir / "jobs" / f"automl-{request_id}" / "trainer.pid")
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "automl_service", "submit", "--wait", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    ended = time.time()
    peak = memory.stop()
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
        trainer_peak_mb=peak,
        test_accuracy=(
            None
            if test_table is None or result.model_version is None
            else accuracy_on(data_dir, str(result.model_version), test_table)
        ),
    )


def table(runs: list[Run], budget: int, data: str) -> str:
    rows = [
        ("submit to succeeded (s)", [r.submit_to_succeeded for r in runs]),
        ("job, created to ended (s)", [r.job_seconds for r in runs]),
        ("job end to result (s)", [r.job_end_to_result for r in runs]),
        ("trainer peak memory (MB)", [r.trainer_peak_mb for r in runs]),
    ]
    accuracies = [r.test_accuracy for r in runs if r.test_accuracy is not None]
    if accuracies:
        rows.append(("accuracy on 50,000 new rows", accuracies))
    lines = [
        f"{data}, `limits.timeout_seconds = {budget}`, {len(runs)} runs, worker idle before each",
        "",
        "| measure | min | median | max |",
        "|---|---:|---:|---:|",
    ]
    for name, values in rows:
        digits = 4 if name.startswith("accuracy") else 1
        low, middle, high = (
            f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values))
        )
        lines.append(f"| {name} | {low} | {middle} | {high} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--sample", choices=sorted(TASKS), default="breast_cancer")
    parser.add_argument("--rows", type=int, help="train on a generated table of this many rows")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds idle before each run")
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="automl-turnaround-")) / "data"
    data = f"sample:{args.sample}"
    test_table = None
    if args.rows:
        test_table = generated_table(data_dir.parent / "test.csv", 50_000, seed=1)
        made = generated_table(data_dir.parent / f"table-{args.rows}.csv", args.rows)
        size = made.stat().st_size / 2**20
        print(f"generated {made} ({args.rows} rows, {size:.0f} MB)", file=sys.stderr)
        data = str(made)
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
            runs.append(one_run(data_dir, env, index, data, args.budget, test_table))
            print(f"run {index}: {runs[-1]}", file=sys.stderr)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        worker_log.close()
    print(table(runs, args.budget, data if not args.rows else f"{args.rows} generated rows"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
