"""Fill a SQLite MLflow store with one parent and many child runs in seconds.

MLflow creates its own schema (through a client call); the runs, tags, params, metrics and
latest metrics are then written with plain INSERTs in one transaction, the rows MLflow's
own ``log_batch`` would have written, without its per-run round trips.
"""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import mlflow

METRICS = (
    "accuracy",
    "AUC_weighted",
    "average_precision_score_weighted",
    "norm_macro_recall",
    "precision_score_weighted",
    "log_loss",
)
ALGORITHMS = (
    "LightGBM",
    "XGBoostClassifier",
    "RandomForest",
    "ExtremeRandomTrees",
    "LogisticRegression",
)


@dataclass(frozen=True)
class FilledStore:
    uri: str
    experiment_id: str
    parent_run_id: str
    children: int
    finished: int
    best_run_id: str  # highest accuracy among finished children, ties to the earlier end
    seconds: float


def fill_store(
    db: Path, children: int, *, seed: int = 7, failed_share: float = 0.02
) -> FilledStore:
    """Create ``db`` as an MLflow store holding one parent run with ``children`` children,
    each with every metric of METRICS, two params and an algorithm tag."""
    started = time.perf_counter()
    uri = f"sqlite:///{db}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    artifacts = (db.parent / "artifacts").resolve()
    experiment_id = client.create_experiment("scan-benchmark", artifact_location=artifacts.as_uri())
    parent = client.create_run(experiment_id, run_name="automl-parent").info.run_id

    rng = random.Random(seed)
    # Like a finished AutoML parent: its children start one after another during its life.
    parent_end = int(time.time() * 1000)
    parent_start = parent_end - children * 10 - 2000
    first_child = parent_start + 1000
    runs, tags, params, metrics, latest = [], [], [], [], []
    best: tuple[float, int, str] | None = None
    finished = 0
    for i in range(children):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        status = "FAILED" if rng.random() < failed_share else "FINISHED"
        start, end = first_child + i * 10, first_child + i * 10 + 5
        runs.append(
            (run_id, f"child-{i}", "LOCAL", "", "", "bench", status, start, end, "",
             "active", f"{artifacts.as_uri()}/{run_id}/artifacts", int(experiment_id), None)
        )  # fmt: skip
        tags += [
            ("mlflow.parentRunId", parent, run_id),
            ("mlflow.runName", f"child-{i}", run_id),
            ("algorithm", ALGORITHMS[i % len(ALGORITHMS)], run_id),
        ]
        params += [("n_estimators", str(rng.randint(10, 500)), run_id),
                   ("learning_rate", f"{rng.uniform(0.01, 0.3):.4f}", run_id)]  # fmt: skip
        for key in METRICS:
            value = round(rng.random(), 4)
            metrics.append((key, value, end, run_id, 0, 0))
            latest.append((key, value, end, 0, 0, run_id))
            if key == "accuracy" and status == "FINISHED":
                candidate = (-value, end, run_id)
                best = candidate if best is None else min(best, candidate)
        finished += status == "FINISHED"

    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE runs SET status = 'FINISHED', start_time = ?, end_time = ? WHERE run_uuid = ?",
            (parent_start, parent_end, parent),
        )
        conn.executemany(f"INSERT INTO runs VALUES ({','.join('?' * 14)})", runs)
        conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            metrics,
        )
        conn.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            latest,
        )
    conn.close()
    assert best is not None, "no finished child"
    return FilledStore(
        uri, experiment_id, parent, children, finished, best[2], time.perf_counter() - started
    )
