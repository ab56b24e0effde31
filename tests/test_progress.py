"""Progress while a job runs: the trial log writes it, the worker records and shows it."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from test_worker_settle import ScriptedEngine, completed, make, request_body

from automl_service.engines.base import JobState, JobStatus
from automl_service.engines.local.layout import JobDir
from automl_service.engines.local.trials import Objective, TrialLog
from automl_service.metrics import Goal
from automl_service.render import result_summary
from automl_service.request import AutoMLRequest
from automl_service.results import RequestState

if TYPE_CHECKING:
    from fixtures_mlflow_store import MlflowStore

pytest_plugins = ["fixtures_mlflow_store"]


def test_the_trial_log_writes_trials_and_best_so_far(
    mlflow_store: MlflowStore, tmp_path: Path
) -> None:
    """After each trial, finished or failed, the progress file holds how many ran and the
    best value of the primary metric so far."""
    client = mlflow_store.client
    parent = client.create_run(mlflow_store.experiment_id).info.run_id
    job = JobDir(tmp_path)
    trials = TrialLog(
        client, mlflow_store.experiment_id, parent, f"job-{uuid.uuid4().hex[:6]}", 1,
        [Objective("accuracy", Goal.MAXIMIZE)], progress_file=job.progress_file,
    )  # fmt: skip
    assert job.read_progress() is None
    trials.log("LightGBM", {}, {"accuracy": 0.8})
    trials.log("RandomForest", {}, {"accuracy": 0.9})
    trials.log("XGBoost", {}, {"accuracy": 0.85})
    assert job.read_progress() == {"trials": 3, "metric": "accuracy", "best": 0.9}
    trials.log_failed("Arima", {}, "it raised")
    assert json.loads(job.progress_file.read_text())["trials"] == 4


def test_status_shows_the_progress_of_a_running_job(tmp_path: Path) -> None:
    """While the job runs, the result carries the engine's progress and `status` shows
    it; once the request ends, the summary no longer does."""
    progress = {"trials": 12, "metric": "accuracy", "best": 0.93, "seconds_left": 7}

    def running(request: AutoMLRequest) -> JobStatus:
        return JobStatus(request.job_name, JobState.RUNNING, progress=dict(progress))

    worker, queue = make(tmp_path, ScriptedEngine(running, completed))
    queue.send(request_body("busy"))
    worker.run_once(threading.Event())
    result = worker.results.get("busy")
    assert result is not None and result.state is RequestState.TRAINING
    assert result.progress == progress
    assert "12 trials, best accuracy = 0.93, 7 s left" in result_summary(result)
