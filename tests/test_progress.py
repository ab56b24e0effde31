"""Progress while a job runs: the trial log writes it, the worker records and shows it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_worker_settle import ScriptedEngine, completed, make, request_body

from automl_service.engines.base import JobState, JobStatus
from automl_service.engines.local.engine import (
    FINISHING_RECHECK_SECONDS,
    LONGEST_RUNNING_RECHECK_SECONDS,
    LocalEngine,
    recheck_in,
)
from automl_service.engines.local.layout import JobDir, TrainerConfig
from automl_service.engines.local.trials import Objective, TrialLog
from automl_service.metrics import Goal
from automl_service.render import progress_text, result_summary
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
    assert job.read_progress() == {
        "trials": 0, "metric": "accuracy", "best": None, "stage": "starting",
        "search_ends_at": None,
    }  # fmt: skip
    trials.searching(until=1234.5)
    trials.log("LightGBM", {}, {"accuracy": 0.8})
    trials.log("RandomForest", {}, {"accuracy": 0.9})
    trials.log("XGBoost", {}, {"accuracy": 0.85})
    assert job.read_progress() == {
        "trials": 3, "metric": "accuracy", "best": 0.9, "stage": "searching",
        "search_ends_at": 1234.5,
    }  # fmt: skip
    trials.log_failed("Arima", {}, "it raised")
    assert json.loads(job.progress_file.read_text())["trials"] == 4
    trials.finishing()
    assert json.loads(job.progress_file.read_text())["stage"] == "finishing"


@pytest.mark.parametrize(
    ("stage", "search_ends_at", "deadline", "expected"),
    [
        ("starting", None, None, LONGEST_RUNNING_RECHECK_SECONDS),  # no time limit
        ("starting", None, 1030.0, LONGEST_RUNNING_RECHECK_SECONDS),  # the end is far
        ("starting", None, 1002.0, 2.2),  # aimed just past the deadline
        ("searching", 1003.0, 1010.0, 3.2),  # aimed just past the search's end
        ("searching", 1000.5, 1010.0, FINISHING_RECHECK_SECONDS),  # never sooner
        ("searching", 999.0, 1010.0, FINISHING_RECHECK_SECONDS),  # the search overran
        ("finishing", 999.0, 1010.0, FINISHING_RECHECK_SECONDS),
        ("finishing", None, None, FINISHING_RECHECK_SECONDS),
        ("searching", None, 990.0, FINISHING_RECHECK_SECONDS),  # past the deadline
        ("searching", "garbage", 1030.0, LONGEST_RUNNING_RECHECK_SECONDS),
    ],
)
def test_a_running_job_is_looked_at_again_when_it_is_due_to_end(
    stage: str, search_ends_at: object, deadline: float | None, expected: float
) -> None:
    """Every few seconds while it searches, just past its search's end or its deadline,
    then every second while it finishes: its end is seen within about a second."""
    assert recheck_in(1000.0, deadline, stage, search_ends_at) == pytest.approx(expected)


def test_the_engine_aims_at_the_trainers_search_end_and_keeps_it_to_itself(
    tmp_path: Path,
) -> None:
    """A running local job's status: re-checked at the end of the search the trainer
    wrote, every second once it says it is finishing; the moment itself is not shown."""
    job = JobDir(tmp_path)
    config = TrainerConfig("sqlite://", "run", "0", str(tmp_path), 1, timeout_seconds=60)
    job.phase_file.write_text("running")
    running = JobStatus("job", JobState.RUNNING)
    ends = time.time() + 3
    progress = {"trials": 4, "metric": "r2", "best": 0.5, "stage": "searching"}
    job.progress_file.write_text(json.dumps({**progress, "search_ends_at": ends}))
    status = LocalEngine._hinted(job, config, running)
    assert status.recheck_after is not None and 2.5 < status.recheck_after < 3.5
    assert status.progress is not None and "search_ends_at" not in status.progress
    assert status.progress["seconds_left"] in (59, 60)
    job.progress_file.write_text(json.dumps({**progress, "stage": "finishing"}))
    status = LocalEngine._hinted(job, config, running)
    assert status.recheck_after == FINISHING_RECHECK_SECONDS
    assert "finishing" in (progress_text(status.progress) or "")


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
