"""The local engine end to end: a real trainer process, real FLAML, a real MLflow store."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from fixtures_local import make_request, wait_terminal
from mlflow.pyfunc import PyFuncModel

from automl_service.engines.base import JobState
from automl_service.engines.local import LocalEngine
from automl_service.engines.local.algorithms import plan
from automl_service.engines.local.baselines import forecast, season_length
from automl_service.engines.local.datasets import load_table
from automl_service.engines.local.layout import JobDir
from automl_service.engines.local.locks import is_locked, pid_alive
from automl_service.engines.local.model_loading import model_columns
from automl_service.errors import PermanentError
from automl_service.metrics import CLASSIFICATION_PRIMARY, REGRESSION_PRIMARY, Goal, Task
from automl_service.runs import RunStatus
from automl_service.selection import select_best
from automl_service.settings import LocalSettings

pytest_plugins = ["fixtures_local"]

#: Enough to finish a job quickly where the models themselves are not under test.
FEW_TRIALS = {"timeout_seconds": 10, "max_trials": 4}


def load_model(engine: LocalEngine, run_id: str) -> PyFuncModel:
    mlflow.set_tracking_uri(engine.settings.mlflow_uri)
    model: PyFuncModel = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    return model


def parent_runs(engine: LocalEngine, job_name: str) -> list[object]:
    experiments = [e.experiment_id for e in engine.client.search_experiments()]
    return list(
        engine.client.search_runs(
            experiments, filter_string=f"tags.`automl_service.job_name` = '{job_name}'"
        )
    )


# Pure parts ---------------------------------------------------------------------------


def test_unknown_algorithm_lists_the_known_ones() -> None:
    """An algorithm name the task does not know is a PermanentError listing the known ones."""
    with pytest.raises(PermanentError, match=r"unknown classification algorithm 'Prophet'"):
        plan(Task.CLASSIFICATION, ["Prophet"], None)
    with pytest.raises(PermanentError, match=r"LightGBM"):
        plan(Task.REGRESSION, None, ["NoSuchModel"])


def test_allowed_and_blocked_algorithms_map_to_learners() -> None:
    """Allowed names map to FLAML learners and baselines; blocked ones are removed."""
    chosen = plan(Task.FORECASTING, ["LightGBM", "Naive", "Arima"], None)
    assert chosen.learners == ("lgbm", "arima")
    assert chosen.baselines == ("Naive",)
    chosen = plan(Task.CLASSIFICATION, None, ["LightGBM"])
    assert "lgbm" not in chosen.learners and chosen.learners
    with pytest.raises(PermanentError, match="no algorithm left"):
        plan(
            Task.FORECASTING,
            None,
            [
                "LightGBM",
                "RandomForest",
                "ExtremeRandomTrees",
                "Arima",
                "Naive",
                "SeasonalNaive",
                "Average",
                "ExponentialSmoothing",
            ],
        )


def test_baselines_forecast_by_their_rules() -> None:
    """Naive repeats the last value, SeasonalNaive the last season, Average the mean."""
    history = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert forecast("Naive", history, 3, 1).tolist() == [6.0, 6.0, 6.0]
    assert forecast("Average", history, 2, 1).tolist() == [3.5, 3.5]
    assert forecast("SeasonalNaive", history, 4, 3).tolist() == [4.0, 5.0, 6.0, 4.0]
    trend = np.arange(48, dtype=float) + np.tile([0.0, 1.0, 0.0, -1.0], 12)
    ahead = forecast("ExponentialSmoothing", trend, 4, 4)
    assert ahead == pytest.approx([48.0, 50.0, 50.0, 50.0], abs=0.5)
    assert season_length("MS") == 12 and season_length("QS-JAN") == 4
    assert season_length("MS", 6) == 6


# Through the trainer process ------------------------------------------------------------


@pytest.mark.slow
def test_classification_end_to_end(engine: LocalEngine, tmp_path: Path) -> None:
    """A classification job ends COMPLETED; children carry the canonical metrics; the best
    child's model predicts the original string labels, and the best by the selection metric
    has a model too. With the VotingEnsemble turned off, every child is a single model."""
    table = load_table("sample:breast_cancer")
    table["target"] = table["target"].map({0: "malignant", 1: "benign"})
    csv = tmp_path / "cancer.csv"
    table.to_csv(csv, index=False)
    request = make_request(
        "classification",
        training_data=str(csv),
        selection={"metric": "log_loss"},
        training={"enable_vote_ensemble": False},
        # The search ends at 6 trials, leaving the limit room for the refit asserted below.
        limits={"timeout_seconds": 10, "max_trials": 6},
    )

    first = engine.ensure_job(request)
    assert first.state in (JobState.RUNNING, JobState.QUEUED)
    status = wait_terminal(engine, request.job_name, request=request)
    assert status.state is JobState.COMPLETED, status.error

    children = engine.child_runs(request.job_name)
    assert len(children) >= 2
    for child in children:
        assert child.status == RunStatus.FINISHED
        assert child.tags["mlflow.parentRunId"] == status.parent_run_id
        assert child.algorithm in {
            "LightGBM",
            "RandomForest",
            "ExtremeRandomTrees",
            "LogisticRegression",
        }
        assert set(CLASSIFICATION_PRIMARY) <= set(child.metrics)
        assert 0.5 < child.metrics["accuracy"] <= 1.0
    lightgbm_defaults = [
        c
        for c in children
        if c.algorithm == "LightGBM"
        and c.params.get("n_estimators") == "100"
        and c.params.get("num_leaves") == "31"
    ]
    assert lightgbm_defaults, "LightGBM's default configuration is always a candidate"
    # A child run lasts as long as its trial's fits, not the moment it was logged.
    durations = [(c.end_time_ms or 0) - (c.start_time_ms or 0) for c in children]
    assert sum(durations) >= 300, durations
    best = select_best(children, "AUC_weighted", Goal.MAXIMIZE)
    assert status.best_child_run_id == best.winner.run_id

    model = load_model(engine, best.winner.run_id)
    python_model = model.unwrap_python_model()  # type: ignore[no-untyped-call]
    assert python_model.fitted_rows == len(table), "refit on every row"
    features = table.drop(columns=["target"])
    answer: Any = model.predict(features)
    predicted: np.ndarray = answer["prediction"].to_numpy()
    assert set(predicted) <= {"malignant", "benign"}
    assert (predicted == table["target"].to_numpy()).mean() > 0.9
    proba = answer[["proba_benign", "proba_malignant"]].to_numpy()
    assert proba.sum(axis=1) == pytest.approx(np.ones(len(table)))
    by_loss = select_best(children, "log_loss", Goal.MINIMIZE).winner
    other: Any = load_model(engine, by_loss.run_id).predict(features.head(20))
    assert set(other["prediction"]) <= {"malignant", "benign"}


@pytest.mark.slow
def test_regression_end_to_end(engine: LocalEngine) -> None:
    """A regression job scored by 3-fold cross-validation ends COMPLETED with a
    VotingEnsemble of different algorithms among its children, and its best model
    (whichever it is) predicts values that track y."""
    request = make_request(
        "regression",
        validation={"n_cross_validations": 3},
        # The search ends at 15 trials, leaving the limit room for the ensemble checked below.
        limits={"timeout_seconds": 12, "max_trials": 15},
    )
    engine.ensure_job(request)
    status = wait_terminal(engine, request.job_name, request=request)
    assert status.state is JobState.COMPLETED, status.error
    children = engine.child_runs(request.job_name)
    assert children and all(set(REGRESSION_PRIMARY) <= set(c.metrics) for c in children)
    best = select_best(children, "normalized_root_mean_squared_error", Goal.MINIMIZE)
    assert status.best_child_run_id == best.winner.run_id
    assert best.value < 0.3
    # Several algorithms' predictions blended beat each of them out of fold.
    (ensemble,) = [c for c in children if c.algorithm == "VotingEnsemble"]
    members = json.loads(ensemble.params["ensembled_iterations"])
    by_id = {c.run_id: c for c in children}
    assert len(members) >= 2 and set(members) <= set(by_id)
    assert len({by_id[m].algorithm for m in members}) == len(members)
    nrmse = "normalized_root_mean_squared_error"
    assert all(ensemble.metrics[nrmse] < by_id[m].metrics[nrmse] for m in members)
    assert sum(json.loads(ensemble.params["ensemble_weights"])) == pytest.approx(1, abs=1e-3)

    table = load_table("sample:diabetes")
    predicted = np.asarray(
        load_model(engine, best.winner.run_id).predict(table.drop(columns=["target"])), dtype=float
    )
    assert predicted.shape == (len(table),)
    assert np.corrcoef(predicted, table["target"])[0, 1] > 0.5


@pytest.mark.slow
def test_forecasting_end_to_end_with_baselines(engine: LocalEngine) -> None:
    """A forecasting job scores the baselines beside FLAML's learners on the same backtest
    windows, and the best model forecasts the months after the series at plausible levels."""
    request = make_request("forecasting")
    engine.ensure_job(request)
    status = wait_terminal(engine, request.job_name, request=request)
    assert status.state is JobState.COMPLETED, status.error
    children = engine.child_runs(request.job_name)
    algorithms = {c.algorithm for c in children}
    assert {"Naive", "SeasonalNaive", "Average", "ExponentialSmoothing"} <= algorithms
    assert algorithms - {"Naive", "SeasonalNaive", "Average", "ExponentialSmoothing"}
    constant = {"Naive", "Average"}  # flat forecasts: no rank correlation, so it is left out
    for child in children:
        expected = set(REGRESSION_PRIMARY) - (
            {"spearman_correlation"} if child.algorithm in constant else set()
        )
        assert expected <= set(child.metrics), child.algorithm
        windows = [
            child.metrics[f"normalized_root_mean_squared_error_window_{i}"] for i in range(3)
        ]
        assert child.metrics["normalized_root_mean_squared_error"] == pytest.approx(
            np.mean(windows)
        )
    best = select_best(children, "normalized_root_mean_squared_error", Goal.MINIMIZE)
    assert status.best_child_run_id == best.winner.run_id
    naive = min(
        c.metrics["normalized_root_mean_squared_error"] for c in children if c.algorithm == "Naive"
    )
    assert best.value <= naive
    assert "VotingEnsemble" not in algorithms, "forecasts get no blend locally"

    series = load_table("sample:co2")
    future = pd.DataFrame(
        {"date": pd.date_range(series["date"].iloc[-1], periods=13, freq="MS")[1:]}
    )
    ahead = np.asarray(load_model(engine, best.winner.run_id).predict(future), dtype=float)
    assert ahead.shape == (12,)
    last_year = series["co2"].iloc[-12:]
    assert last_year.min() - 5 < ahead.mean() < last_year.max() + 5


@pytest.mark.slow
def test_missing_target_column_fails_with_the_reason(engine: LocalEngine) -> None:
    """A target column absent from the data ends the job FAILED naming it and the columns."""
    request = make_request(
        "regression", target_column_name="price", request_id="t-missing", limits=FEW_TRIALS
    )
    engine.ensure_job(request)
    status = wait_terminal(engine, request.job_name, request=request)
    assert status.state is JobState.FAILED
    assert status.error is not None
    assert "'price'" in status.error and "bmi" in status.error
    assert engine.child_runs(request.job_name) == []


@pytest.mark.slow
def test_ensure_job_twice_makes_one_parent_and_one_trainer(engine: LocalEngine) -> None:
    """Calling ensure_job again (also from a second engine) neither adds a parent run nor
    starts a second training attempt."""
    request = make_request("regression", request_id="t-twice", limits=FEW_TRIALS)
    first = engine.ensure_job(request)
    again = engine.ensure_job(request)
    other = LocalEngine(engine.settings).ensure_job(request)
    assert first.parent_run_id == again.parent_run_id == other.parent_run_id
    status = wait_terminal(engine, request.job_name, request=request)
    assert status.state is JobState.COMPLETED, status.error
    assert len(parent_runs(engine, request.job_name)) == 1
    job = JobDir(engine.data_dir / "jobs" / request.job_name)
    assert job.attempts() == 1
    assert job.log_file.read_text().count("trainer.start") == 1


@pytest.mark.slow
def test_killed_trainer_is_retrained_under_the_same_parent(engine: LocalEngine) -> None:
    """After SIGKILL mid-search, ensure_job re-trains under the same parent run; the job
    ends COMPLETED and the first attempt's children are marked KILLED."""
    request = make_request("classification", request_id="t-kill", limits={"timeout_seconds": 10})
    engine.ensure_job(request)
    job = JobDir(engine.data_dir / "jobs" / request.job_name)
    deadline = time.monotonic() + 90
    while not engine.child_runs(request.job_name):
        assert time.monotonic() < deadline, "no trial was logged"
        time.sleep(0.2)
    pid = job.spawned_pid()
    assert pid is not None
    kill_trainer(job, pid)
    first_attempt = {c.run_id for c in engine.child_runs(request.job_name)}
    assert state_of(engine, request.job_name) is JobState.RUNNING

    assert engine.ensure_job(request).state is JobState.RUNNING
    status = wait_terminal(engine, request.job_name, request=request)
    assert status.state is JobState.COMPLETED, status.error
    assert job.attempts() == 2, job.log_file.read_text()[-2000:]
    assert len(parent_runs(engine, request.job_name)) == 1
    children = {c.run_id: c for c in engine.child_runs(request.job_name)}
    assert all(children[r].status == RunStatus.KILLED for r in first_attempt)
    assert status.best_child_run_id not in first_attempt


@pytest.mark.slow
def test_dead_trainer_at_the_start_limit_ends_failed(engine: LocalEngine) -> None:
    """A RUNNING parent with no live trainer after its last allowed start ends FAILED
    with why, and the trial the dead trainer had under way is closed."""
    request = make_request("regression", request_id="t-gaveup")
    engine.ensure_job(request)
    job = JobDir(engine.data_dir / "jobs" / request.job_name)
    pid = job.spawned_pid()
    assert pid is not None
    kill_trainer(job, pid)
    starts = engine.settings.max_trainer_starts
    assert starts >= 10  # a platform kill now and then never fails a request
    job.write_attempts(starts - 1)  # as if the earlier starts had died too
    engine.ensure_job(request)  # the last start
    pid = job.spawned_pid()
    assert pid is not None
    kill_trainer(job, pid)
    config = job.read_config()
    assert config is not None
    engine.client.create_run(  # what a trainer killed while logging a model leaves behind
        config.experiment_id, tags={"mlflow.parentRunId": config.parent_run_id}
    )
    status = engine.ensure_job(request)
    assert status.state is JobState.FAILED
    assert status.error is not None and f"{starts} times" in status.error
    running = [r for r in engine.child_runs(request.job_name) if r.status == RunStatus.RUNNING]
    assert running == []  # the dead trainer's trial in progress is closed


@pytest.mark.slow
def test_one_slot_queues_the_second_job(local_settings: LocalSettings) -> None:
    """With max_concurrent_jobs=1 a second job stays QUEUED until the first ends, then runs."""
    settings = local_settings.model_copy(update={"max_concurrent_jobs": 1})
    engine = LocalEngine(settings)
    first = make_request("regression", request_id="t-first", limits=FEW_TRIALS)
    second = make_request("regression", request_id="t-second", limits=FEW_TRIALS)
    try:
        assert engine.ensure_job(first).state is JobState.RUNNING
        assert engine.ensure_job(second).state is JobState.QUEUED
        while not state_of(engine, first.job_name).terminal:
            assert state_of(engine, second.job_name) is JobState.QUEUED
            if engine.ensure_job(second).state is not JobState.QUEUED:
                assert state_of(engine, first.job_name).terminal
            time.sleep(0.5)
        assert state_of(engine, first.job_name) is JobState.COMPLETED
        deadline = time.monotonic() + 30  # the first trainer exits just after its run ends
        while engine.ensure_job(second).state is JobState.QUEUED:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert wait_terminal(engine, second.job_name).state is JobState.COMPLETED
    finally:
        for name in (first.job_name, second.job_name):
            pid = JobDir(settings.data_dir / "jobs" / name).spawned_pid()
            if pid is not None and pid_alive(pid):
                os.killpg(pid, signal.SIGKILL)


def kill_trainer(job: JobDir, pid: int) -> None:
    """SIGKILL the trainer's process group and wait until its lock is free: the main
    thread turns zombie before the other threads have exited and closed the lock file."""
    os.killpg(pid, signal.SIGKILL)
    while pid_alive(pid) or is_locked(job.trainer_lock):
        time.sleep(0.1)


def state_of(engine: LocalEngine, job_name: str) -> JobState:
    status = engine.job_status(job_name)
    assert status is not None
    return status.state


def test_unknown_job_has_no_status(engine: LocalEngine) -> None:
    """job_status of a job never ensured is None and it has no child runs."""
    assert engine.job_status("automl-never") is None
    assert engine.child_runs("automl-never") == []
    engine.check()


def test_small_tables_are_cross_validated_by_default() -> None:
    """Without a validation option, a small table is scored by 5-fold CV, a large one by
    a holdout; an explicit holdout size is kept."""
    import pandas as pd

    from automl_service.engines.local.search import CV_BELOW_ROWS, split_tabular

    small = pd.DataFrame({"x": range(200), "target": [0, 1] * 100})
    assert split_tabular(make_request("classification"), small).n_splits == 5
    held = split_tabular(
        make_request("classification", validation={"validation_size": 0.25}), small
    )
    assert held.n_splits is None and held.X_val is not None and len(held.X_val) == 50
    X, y = held.all_rows()
    assert len(X) == len(y) == 200
    big = pd.DataFrame({"x": range(CV_BELOW_ROWS), "target": [0, 1] * (CV_BELOW_ROWS // 2)})
    large = split_tabular(make_request("classification"), big)
    assert large.n_splits is None and large.X_val is not None


@pytest.mark.slow
def test_xgboost_when_asked_for(engine: LocalEngine) -> None:
    """Allowing only XGBoostClassifier trains XGBoost trials, named the Azure way."""
    assert plan(Task.CLASSIFICATION, ["XGBoostClassifier"], None).learners == ("xgboost",)
    request = make_request(
        "classification",
        training_data="sample:iris",
        primary_metric="accuracy",
        training={"allowed_algorithms": ["XGBoostClassifier"]},
        limits={"timeout_seconds": 10, "max_trials": 3},
    )
    engine.ensure_job(request)
    status = wait_terminal(engine, request.job_name, request=request)
    assert status.state is JobState.COMPLETED, status.error
    children = engine.child_runs(request.job_name)
    assert children and {c.algorithm for c in children} == {"XGBoostClassifier"}


def test_folds_pool_unless_their_classes_differ() -> None:
    """Out-of-fold predictions pool into one set; folds with different class columns do
    not (their metrics are averaged instead)."""
    import numpy as np

    from automl_service.engines.local.predictions import Fold

    a = Fold(np.array([0, 1]), np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), [0, 1])
    b = Fold(np.array([1, 0]), np.array([0, 0]), np.array([[0.6, 0.4], [0.7, 0.3]]), [0, 1])
    pooled = Fold.pool([a, b])
    assert pooled is not None
    assert pooled.y_true.tolist() == [0, 1, 1, 0] and pooled.proba is not None
    assert pooled.proba.shape == (4, 2) and pooled.classes == [0, 1]
    odd = Fold(np.array([2]), np.array([2]), np.array([[0.1, 0.9]]), [1, 2])
    assert Fold.pool([a, odd]) is None


@pytest.mark.slow
def test_queued_jobs_start_in_submit_order(local_settings: LocalSettings) -> None:
    """With one slot, jobs waiting for it start in the order they were submitted, however
    their re-checks interleave, and a waiting job is told to look again within seconds."""
    settings = local_settings.model_copy(update={"max_concurrent_jobs": 1})
    engine = LocalEngine(settings)
    few = {"timeout_seconds": 10, "max_trials": 2}
    first, second, third = (
        make_request("regression", request_id=f"t-order-{n}", limits=few) for n in (1, 2, 3)
    )
    assert engine.ensure_job(first).state is JobState.RUNNING
    time.sleep(0.05)
    waiting = engine.ensure_job(second)
    time.sleep(0.05)
    assert engine.ensure_job(third).state is JobState.QUEUED
    assert waiting.state is JobState.QUEUED and waiting.recheck_after == 2.0
    started: list[str] = []
    ends = time.time() + 240
    while len(started) < 2 and time.time() < ends:
        for request in (third, second):  # the later one always asks first
            if (
                request.id not in started
                and engine.ensure_job(request).state is not JobState.QUEUED
            ):
                started.append(request.id)
        time.sleep(0.2)
    assert started == ["t-order-2", "t-order-3"]


@pytest.mark.slow
def test_ignored_columns_are_left_out_of_training_and_of_the_models_inputs(
    engine: LocalEngine, tmp_path: Path
) -> None:
    """An id column named in ``ignored_columns`` is not a feature: the winner's model
    lists no such input and answers rows that do not have it; a name not in the data is
    refused naming it."""
    table = load_table("sample:iris")
    table.insert(0, "customer_id", range(len(table)))
    csv = tmp_path / "iris.csv"
    table.to_csv(csv, index=False)
    request = make_request(
        "classification",
        training_data=str(csv),
        primary_metric="accuracy",
        ignored_columns=["customer_id"],
        limits={"timeout_seconds": 10, "max_trials": 3},
    )
    engine.ensure_job(request)
    status = wait_terminal(engine, request.job_name, request=request)
    assert status.state is JobState.COMPLETED, status.error
    model = load_model(engine, str(status.best_child_run_id))
    columns = model_columns(model)  # a single learner's, or an ensemble's (either may win)
    assert columns and "customer_id" not in columns
    features = table.drop(columns=["customer_id", "target"]).head(5)
    assert len(model.predict(features)) == 5

    typo = make_request(
        "classification",
        request_id="t-typo",
        training_data=str(csv),
        ignored_columns=["custmer_id"],
        limits={"timeout_seconds": 10, "max_trials": 2},
    )
    engine.ensure_job(typo)
    failed = wait_terminal(engine, typo.job_name, request=typo)
    assert failed.state is JobState.FAILED
    assert "ignored column(s) 'custmer_id' not in the data" in (failed.error or "")


@pytest.mark.slow
def test_exit_score_ends_the_search_at_the_first_trial_that_reaches_it(
    engine: LocalEngine,
) -> None:
    """``limits.exit_score`` as on Azure: the search stops at the trial that reaches it,
    long before its trials or time run out, and the job ends COMPLETED with that trial."""
    request = make_request(
        "classification",
        primary_metric="accuracy",
        limits={"timeout_seconds": 120, "max_trials": 200, "exit_score": 0.5},
    )
    engine.ensure_job(request)
    status = wait_terminal(engine, request.job_name, request=request)
    assert status.state is JobState.COMPLETED, status.error
    children = engine.child_runs(request.job_name)
    assert len(children) == 1 and children[0].metrics["accuracy"] >= 0.5
    log = (engine.data_dir / "jobs" / request.job_name / "trainer.log").read_text()
    assert "search.exit_score_reached" in log


def test_exit_score_is_reached_in_the_metrics_direction() -> None:
    from automl_service.engines.local.search import reaches

    accuracy = make_request("classification", primary_metric="accuracy",
                            limits={"exit_score": 0.9})  # fmt: skip
    assert reaches(accuracy, 0.9) and not reaches(accuracy, 0.89)
    assert not reaches(accuracy, float("nan")) and not reaches(accuracy, None)
    nrmse = make_request("regression", limits={"exit_score": 0.1})
    assert reaches(nrmse, 0.05) and not reaches(nrmse, 0.2)
    assert not reaches(make_request("regression"), 0.0)  # no exit score: never


def test_the_trainer_hands_what_it_frees_back_to_the_system(
    local_settings: LocalSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer's malloc returns large freed blocks, and Arrow allocates through that
    malloc instead of its own pool, which keeps what it freed; a value the environment
    already sets is kept."""
    import subprocess
    import sys

    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    env = LocalEngine(local_settings)._trainer_env()
    assert env["MALLOC_MMAP_THRESHOLD_"] == "131072"
    asked = "import pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    pool = subprocess.run(
        [sys.executable, "-c", asked], env=env, capture_output=True, text=True, check=True
    )
    assert pool.stdout.strip() == "system"
